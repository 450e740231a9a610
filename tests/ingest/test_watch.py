"""Watched folders: a real folder, real file events (watchfiles), real Chroma and the real embedder.

Created files are found, edited ones answer with their new text only, deleted ones are gone, and moved ones keep
their vectors (nothing embedded) under their new path; a removal a crash cut short is finished by the next writer.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest import IngestConfig, build_ingestor
from ingest.watch import FolderWatcher, SyncResult
from kbagent.components import open_knowledge_base
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase
from knowledge_base.embeddings import Embedder
from tests.support.embedders import CountingEmbedder
from tests.support.stored import stored_texts


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def counted_kb(store_settings: Settings, counting: CountingEmbedder) -> Iterator[KnowledgeBase]:
    """Embedded store and a `chroma run` server, embedding through `counting`."""
    with open_knowledge_base(store_settings, counting) as kb:  # type: ignore[arg-type]
        yield kb


def _note(path: Path, title: str, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    return path


def _vectors(kb: KnowledgeBase, source: str) -> dict[str, list[float]]:
    """Text → vector of a source's chunks."""
    got = kb.collection.get(where={"source": source}, include=["embeddings"])
    texts = {row.chunk_id: row.text for row in kb.keywords.rows(got["ids"])}
    return {texts[i]: [round(float(x), 6) for x in v] for i, v in zip(got["ids"], got["embeddings"], strict=True)}


def _top_source(kb: KnowledgeBase, query: str) -> str:
    hits = kb.search(query, k=1)
    return hits[0].metadata["source"] if hits else ""


def test_a_moved_file_keeps_its_vectors_under_its_new_path(
    tmp_path: Path, counted_kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    kb = counted_kb
    folder = tmp_path / "notes"
    old = _note(folder / "garden" / "tomatoes.md", "Tomatoes", "Water the tomato plants with 2 litres each evening.")
    _note(folder / "garden" / "beans.md", "Beans", "Runner beans climb poles three metres tall.")
    watcher = FolderWatcher(build_ingestor(IngestConfig(), kb), [folder, folder / "garden"])
    assert watcher.folders == [folder]  # a folder inside a watched one is part of it
    first = watcher.sync(folder)
    assert first.report is not None and first.report.counts["added"] == 2
    before = _vectors(kb, str(old))
    embedded_before = counting.embedded

    new = folder / "kitchen" / "tomato-care.md"  # another subfolder: another doc type, another name
    new.parent.mkdir()
    old.rename(new)
    (result,) = watcher.apply([old, new])

    assert result.report is not None
    assert result.report.counts == {
        "added": 0, "updated": 0, "moved": 1, "unchanged": 0, "failed": 0, "skipped": 0, "removed": 0
    }  # fmt: skip
    assert counting.embedded == embedded_before, "a move embedded its chunks again"
    assert result.report.embedded == 0
    assert _vectors(kb, str(new)) == before and _vectors(kb, str(old)) == {}
    assert kb.records.get(str(old)) is None
    record = kb.records.get(str(new))
    assert record is not None and record.doc_type == "kitchen" and record.root == str(folder)
    meta = kb.collection.get(ids=record.chunk_ids, include=["metadatas"])["metadatas"]
    assert {(m["source"], m["doc_type"]) for m in meta} == {(str(new), "kitchen")}
    assert {r.source for r in kb.keywords.rows(record.chunk_ids)} == {str(new)}
    assert _top_source(kb, "how much water do tomato plants need") == str(new)
    assert stored_texts(kb)  # every vector has its text


def test_a_moved_file_whose_title_is_its_name_embeds_only_its_new_header(
    tmp_path: Path, counted_kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    """A text file without a short first line is titled by its name, which every chunk's header carries: renamed,
    its chunks are new texts and are embedded (a vector is never reused for a text it wasn't made from)."""
    kb = counted_kb
    folder = tmp_path / "notes"
    old = folder / "pumps.txt"
    folder.mkdir()
    old.write_text(
        "The pump impeller gasket is part QX-7781, " + "and it is changed with the seal " * 3, encoding="utf-8"
    )
    watcher = FolderWatcher(build_ingestor(IngestConfig(), kb), [folder])
    watcher.sync(folder)
    embedded_before = counting.embedded
    new = folder / "gaskets.txt"
    old.rename(new)
    (result,) = watcher.apply([old, new])
    assert result.report is not None and result.report.counts["moved"] == 1
    assert counting.embedded == embedded_before + 1
    hit = kb.search("impeller gasket part", k=1)[0]
    assert hit.metadata["source"] == str(new) and hit.page_content.startswith("gaskets\n\n")


def test_a_full_sync_catches_what_changed_while_nothing_watched(
    tmp_path: Path, counted_kb: KnowledgeBase, counting: CountingEmbedder
) -> None:
    kb = counted_kb
    folder = tmp_path / "notes"
    _note(folder / "a.md", "Alpha", "The alpha valve opens at 3 bar.")
    doomed = _note(folder / "b.md", "Beta", "The beta relay trips at 40 amps.")
    moved = _note(folder / "c.md", "Gamma", "The gamma filter is changed every 90 days.")
    edited = _note(folder / "d.md", "Delta", "The delta belt is 1200 mm long.")
    ingestor = build_ingestor(IngestConfig(), kb)
    FolderWatcher(ingestor, [folder]).sync(folder)

    doomed.unlink()
    (folder / "sub").mkdir()
    moved.rename(folder / "sub" / "c.md")
    _note(edited, "Delta", "The delta belt is 1500 mm long since the retrofit.")
    _note(folder / "e.md", "Epsilon", "The epsilon sensor reads humidity.")
    embedded_before = counting.embedded
    result = FolderWatcher(ingestor, [folder]).sync(folder)

    assert result.report is not None
    counts = result.report.counts
    assert (counts["added"], counts["updated"], counts["moved"], counts["removed"]) == (1, 1, 1, 1)
    assert counting.embedded - embedded_before == 2  # the edited note's chunk and the new note's, nothing moved
    assert {Path(r.source).relative_to(folder).as_posix() for r in kb.sources()} == {"a.md", "sub/c.md", "d.md", "e.md"}
    assert _top_source(kb, "beta relay trips amps") != str(doomed)
    assert "1500 mm" in kb.search("delta belt length", k=1)[0].page_content
    assert not any("1200 mm" in t for t in stored_texts(kb))


def test_a_link_out_of_the_allowed_folders_is_skipped(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    secret = _note(tmp_path / "private" / "secret.md", "Secret", "The vault code is 4471.")
    folder = tmp_path / "shared"
    _note(folder / "open.md", "Open", "The office opens at nine.")
    (folder / "leak.md").symlink_to(secret)
    result = FolderWatcher(build_ingestor(IngestConfig(), embedded_kb), [folder], within=[folder]).sync(folder)
    assert result.report is not None
    assert [Path(r.source).name for r in embedded_kb.sources()] == ["open.md"]
    assert [(Path(o.source).name, o.status) for o in result.report.outcomes if o.status == "skipped"] == [
        ("leak.md", "skipped")
    ]


def test_a_removal_cut_short_is_finished_by_the_next_writer(
    tmp_path: Path, store_settings: Settings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records go first, then Chroma's chunks: a crash between leaves chunk ids noted, deleted on the next write."""
    folder = tmp_path / "notes"
    gone = _note(folder / "gone.md", "Gone", "This note will be deleted.")
    _note(folder / "kept.md", "Kept", "This note stays.")
    with open_knowledge_base(store_settings, embedder) as kb:
        FolderWatcher(build_ingestor(IngestConfig(), kb), [folder]).sync(folder)
        ids_of_gone = kb.collection.get(where={"source": str(gone)}, include=[])["ids"]
        assert ids_of_gone

        def crash() -> None:
            if kb.records.pending_deletes():
                raise KeyboardInterrupt  # as if killed after the records' transaction

        monkeypatch.setattr(kb, "_finish_deletes", crash)
        with pytest.raises(KeyboardInterrupt):
            kb.remove([str(gone)])
        assert kb.records.get(str(gone)) is None
        assert kb.collection.get(ids=ids_of_gone, include=[])["ids"] == ids_of_gone  # left in Chroma
    with open_knowledge_base(store_settings, embedder) as kb:
        with kb.writing():
            pass
        assert kb.collection.get(ids=ids_of_gone, include=[])["ids"] == []
        assert kb.records.pending_deletes() == []
        assert stored_texts(kb)


def _wait_for(results: queue.Queue[SyncResult], done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        try:
            result = results.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            pytest.fail(f"the watcher did not sync: {what}")
        assert result.report is not None, result.error


def test_a_watched_folder_follows_creates_edits_deletes_and_moves(
    tmp_path: Path, settings: Settings, counting: CountingEmbedder
) -> None:
    folder = tmp_path / "notes"
    _note(folder / "start.md", "Start", "The first note says the boiler is serviced in March.")
    results: queue.Queue[SyncResult] = queue.Queue()
    stop = threading.Event()
    with open_knowledge_base(settings, counting) as kb:  # type: ignore[arg-type]
        watcher = FolderWatcher(build_ingestor(IngestConfig(), kb), [folder], debounce_ms=200)
        thread = threading.Thread(target=watcher.run, args=(results.put, stop), daemon=True)
        thread.start()
        try:
            sources = lambda: {r.source for r in kb.sources()}  # noqa: E731
            _wait_for(results, lambda: str(folder / "start.md") in sources(), "the first full sync")

            created = _note(folder / "pond.md", "Pond", "The pond pump runs on a 12 volt solar panel.")
            _wait_for(results, lambda: str(created) in sources(), "a created file")
            assert _top_source(kb, "pond pump solar panel volts") == str(created)

            _note(created, "Pond", "The pond pump now runs on mains power through a timer.")
            _wait_for(results, lambda: any("mains" in t for t in stored_texts(kb)), "an edited file")
            assert "mains power" in kb.search("pond pump power", k=1)[0].page_content
            assert not any("solar" in t for t in stored_texts(kb))

            before = _vectors(kb, str(created))
            embedded_before = counting.embedded
            moved = folder / "water" / "pond.md"
            moved.parent.mkdir()
            created.rename(moved)
            _wait_for(results, lambda: sources() == {str(folder / "start.md"), str(moved)}, "a moved file")
            assert counting.embedded == embedded_before and _vectors(kb, str(moved)) == before
            assert _top_source(kb, "pond pump mains timer") == str(moved)

            moved.unlink()
            _wait_for(results, lambda: sources() == {str(folder / "start.md")}, "a deleted file")
            assert not any("pond" in t.lower() for t in stored_texts(kb))
        finally:
            stop.set()
            thread.join(30)
        assert not thread.is_alive()


@pytest.mark.slow
def test_kbagent_watch_prints_a_line_per_batch_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    _note(folder / "one.md", "One", "The first note.")
    env = {**os.environ, "KBAGENT_DATA_DIR": str(tmp_path / "data"), "KBAGENT_WATCH_DEBOUNCE_MS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from kbagent.cli import main; main()", "watch", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()

    def expect(fragment: str) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                continue
            if fragment in line:
                return line
        pytest.fail(f"no line with {fragment!r}")

    try:
        expect("watching 1 folder")
        assert "1 added" in expect("(full sync)")
        _note(folder / "two.md", "Two", "The second note.")
        line = expect("(changes)")
        assert "1 added, 0 updated, 0 unchanged, 0 failed" in line and "0 removed, 0 moved" in line
        (folder / "two.md").rename(folder / "three.md")
        assert "1 moved" in expect("(changes)")
        os.kill(proc.pid, signal.SIGINT)
        expect("stopped watching")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ingest_sync_moves_a_renamed_file_too(tmp_path: Path, settings: Settings, counting: CountingEmbedder) -> None:
    """`kbagent ingest --sync` takes the same path: a file renamed since the last ingest keeps its vectors."""
    folder = tmp_path / "notes"
    old = _note(folder / "valves.md", "Valves", "The alpha valve opens at 3 bar.")
    with open_knowledge_base(settings, counting) as kb:  # type: ignore[arg-type]
        ingestor = build_ingestor(IngestConfig(), kb)
        ingestor.run([folder], sync=True)
        embedded_before = counting.embedded
        new = folder / "alpha-valve.md"
        old.rename(new)
        report = ingestor.run([folder], sync=True)
        assert (report.counts["moved"], report.counts["removed"], report.counts["added"]) == (1, 0, 0)
        assert counting.embedded == embedded_before and report.embedded == 0
        assert [r.source for r in kb.sources()] == [str(new)]


def test_a_folder_moved_in_or_out_is_one_change(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """A folder renamed into or out of a watched one is one event for the folder: what it holds follows."""
    kb = embedded_kb
    folder = tmp_path / "notes"
    _note(folder / "a.md", "Alpha", "The alpha valve opens at 3 bar.")
    outside = tmp_path / "elsewhere" / "pumps"
    _note(outside / "p1.md", "Pump one", "Pump one moves 40 litres a minute.")
    _note(outside / "deep" / "p2.md", "Pump two", "Pump two moves 90 litres a minute.")
    watcher = FolderWatcher(build_ingestor(IngestConfig(), kb), [folder])
    watcher.sync(folder)

    inside = folder / "pumps"
    outside.rename(inside)
    (result,) = watcher.apply([inside])
    assert result.report is not None and result.report.counts["added"] == 2
    records = {Path(r.source).relative_to(folder).as_posix(): r for r in kb.sources()}
    assert set(records) == {"a.md", "pumps/p1.md", "pumps/deep/p2.md"}
    assert records["pumps/deep/p2.md"].doc_type == "pumps" and records["pumps/p1.md"].root == str(folder)

    inside.rename(outside)
    (result,) = watcher.apply([inside])
    assert result.report is not None and result.report.counts["removed"] == 2
    assert [Path(r.source).name for r in kb.sources()] == ["a.md"]
