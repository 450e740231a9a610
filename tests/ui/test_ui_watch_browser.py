"""The watched folders in a real browser (Debian's Chromium): a path typed in the Knowledge base tab is refused
outside KBAGENT_WATCH_ROOTS, watched inside them, and its sync shows up without a reload."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.support import parts
from tests.support.browser import CHROMIUM, open_app
from tests.support.ui_app import running_app

pytestmark = [pytest.mark.slow, parts.requires("Chromium", Path(CHROMIUM).exists())]


def test_a_folder_typed_in_the_tab_is_watched_and_one_outside_the_roots_refused(
    tmp_path: Path,
    embedder: Embedder,
    context: Any,
    outside: list[str],
) -> None:
    root = tmp_path / "shared"
    folder = root / "docs"
    folder.mkdir(parents=True)
    (folder / "ferry.md").write_text("# Ferry\n\nThe island ferry leaves at 7:40 from pier two.\n", encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data",
        collection=f"t{uuid.uuid4().hex[:12]}",
        watch_roots=str(root),
        watch_debounce_ms=200,
        _env_file=None,
    )
    with running_app(settings, embedder) as app:
        page = open_app(context, app.url)
        page.get_by_role("tab", name="Knowledge base").click()
        page.get_by_text("Watched folders").click()
        box = page.locator("#watch-path input, #watch-path textarea").first
        box.fill("/etc")
        page.locator("#watch-add").click()
        page.get_by_text("not under the folders the app may watch").first.wait_for()
        assert box.input_value() == "/etc"  # kept for correcting

        box.fill(str(folder))
        page.locator("#watch-add").click()
        page.locator("#watched").get_by_text("full sync: 1 added").wait_for(timeout=90_000)  # the timer shows it
        assert box.input_value() == ""
        assert [Path(r.source).name for r in app.kb.sources()] == ["ferry.md"]
        assert (tmp_path / "data" / "watched_folders.json").read_text().count(str(folder)) == 1
        assert "Traceback" not in page.content()
    assert outside == []
