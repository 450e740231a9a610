"""The app's watched folders, through the Knowledge base tab's handlers: added only under KBAGENT_WATCH_ROOTS
(refused elsewhere, and everywhere when it is empty), kept across a restart, and synced by the background thread
with its last sync and errors shown. Real Chroma, the real embedder, a real folder."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest

from kbagent.components import Components
from kbagent.services.operations import Services, SessionChoices
from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from ui import knowledge_tab, markup


@contextmanager
def _handlers(data: Path, embedder: Embedder, roots: str) -> Iterator[knowledge_tab.KnowledgeHandlers]:
    """The tab's handlers over real parts, as the app builds them (the watcher thread started, then stopped)."""
    settings = Settings(data_dir=data, watch_roots=roots, watch_debounce_ms=200, _env_file=None)  # one knowledge base
    with Components(settings, embedder=embedder) as parts:
        svc = Services(parts, [])
        svc.watched.start()
        try:
            yield knowledge_tab.KnowledgeHandlers(svc, SessionChoices())
        finally:
            svc.watched.close()


def _wait(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_watching_from_the_app_is_off_without_roots(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    with _handlers(tmp_path / "data", embedder, "") as handlers:
        assert "off" in handlers.watch_view() and "KBAGENT_WATCH_ROOTS" in handlers.watch_view()
        with pytest.warns(UserWarning, match="watching folders from the app is off"):
            assert handlers.watch_add(str(folder))[0] == gr.skip()
        assert handlers.svc.watched.folders() == []
    assert not (tmp_path / "data" / "watched_folders.json").exists()


def test_folders_outside_the_roots_are_refused(tmp_path: Path, embedder: Embedder) -> None:
    root = tmp_path / "shared"
    (root / "docs").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    (root / "escape").symlink_to(tmp_path / "private")
    refused = {
        "/etc": "not under the folders the app may watch",
        str(tmp_path / "private"): "not under",
        f"{root}/../private": "not under",  # `..` resolved before the check
        str(root / "escape"): "not under",  # so are symlinks
        "docs": "full path",  # relative: refused, not taken from the server's working folder
        str(root / "missing"): "no folder at",
        "": "full path",
        f"{root}/docs\x00": "full path",
    }
    with _handlers(tmp_path / "data", embedder, str(root)) as handlers:
        for typed, reason in refused.items():
            with pytest.warns(UserWarning, match=reason):
                path_box, _ = handlers.watch_add(typed)
            assert path_box == gr.skip(), typed  # the box keeps what was typed
        assert handlers.svc.watched.folders() == []
        assert markup.md_escape(str(root)) in handlers.watch_view()  # says where folders may be watched


def test_a_watched_folder_is_synced_shown_and_kept_across_a_restart(tmp_path: Path, embedder: Embedder) -> None:
    root = tmp_path / "shared"
    folder = root / "docs"
    folder.mkdir(parents=True)
    (folder / "boiler.md").write_text("# Boiler\n\nThe boiler is serviced every March.\n", encoding="utf-8")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    data = tmp_path / "data"
    with _handlers(data, embedder, str(root)) as handlers:
        assert handlers.watch_add(f"{folder}/")[0] == ""  # the box is cleared
        assert handlers.svc.watched.folders() == [str(folder)]
        with pytest.warns(UserWarning, match="watched already"):
            handlers.watch_add(str(folder))
        kb = handlers.svc.kb
        _wait(lambda: any(r.source.endswith("boiler.md") for r in kb.sources()), "the first sync")
        _wait(lambda: "full sync: 1 added" in handlers.watch_view(), "the sync shown")
        view = handlers.watch_view()
        assert "broken.pdf" in view and "✘" in view  # the file that failed is among the errors
        (folder / "pond.md").write_text("# Pond\n\nThe pond pump runs on solar power.\n", encoding="utf-8")
        _wait(lambda: any(r.source.endswith("pond.md") for r in kb.sources()), "a new file synced")
        _wait(lambda: "changes: 1 added" in handlers.watch_view(), "the change shown")

    with _handlers(data, embedder, str(root)) as handlers:  # the app started again
        assert handlers.svc.watched.folders() == [str(folder)]
        assert markup.md_escape(markup.middle_cut(str(folder))) in handlers.watch_view()
        (folder / "pond.md").unlink()  # while the app was down
        kb = handlers.svc.kb
        _wait(lambda: not any(r.source.endswith("pond.md") for r in kb.sources()), "the start-up sync")
        assert handlers.watch_remove(str(folder))[0] == ""
        assert handlers.svc.watched.folders() == []
        with pytest.warns(UserWarning, match="not watched"):
            handlers.watch_remove(str(folder))

    with _handlers(data, embedder, str(root)) as handlers:
        assert handlers.svc.watched.folders() == []
