"""`kill -9` in the middle of an ingest, then a rerun: the store must equal that of one clean run (the embedded
store, and a Chroma server beside PostgreSQL)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbagent.components import open_knowledge_base
from kbagent.settings import Settings
from tests.support import parts
from tests.support.stored import keyword_ids

pytestmark = pytest.mark.slow

INGEST = [sys.executable, "-c", "from kbagent.cli import main; main()", "ingest"]


def _corpus(folder: Path, files: int = 80) -> Path:
    folder.mkdir(parents=True)
    for i in range(files):
        sections = "\n\n".join(
            f"## Part {j}\n\n"
            + " ".join(f"Document {i} part {j} sentence {k} about topic {i * 7 % 13}." for k in range(12))
            for j in range(3)
        )
        (folder / f"doc{i:03}.md").write_text(f"# Doc {i}\n\n{sections}\n", encoding="utf-8")
    return folder


SERVERS: dict[str, str] = {}  # for the trials against servers: KBAGENT_CHROMA_URL and KBAGENT_DATABASE_URL


def _servers(data: Path) -> dict[str, str]:
    """The servers a data dir's trial runs against (none: the embedded store); one collection per data dir."""
    if not SERVERS:
        return {}
    return {**SERVERS, "KBAGENT_COLLECTION": f"c{zlib.crc32(str(data).encode())}"}


def _ingest(corpus: Path, data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*INGEST, str(corpus), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Small write batches: several store writes per run, so kills land before, between and inside them.
        env={**os.environ, "KBAGENT_DATA_DIR": str(data), "KBAGENT_WRITE_BATCH_CHUNKS": "24", **_servers(data)},
        cwd=data.parent,
    )


def _settings(data: Path) -> Settings:
    flat = {name.removeprefix("KBAGENT_").lower(): value for name, value in _servers(data).items()}
    return Settings(data_dir=data, _env_file=None, **flat)


def _state(data: Path, embedder) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with open_knowledge_base(_settings(data), embedder) as kb:
        stored = kb.collection.get(include=["metadatas"])
        records = {r.source: (r.content_hash, sorted(r.chunk_ids)) for r in kb.sources()}
        chunk_hashes = {
            i: (m["source"], m["content_hash"]) for i, m in zip(stored["ids"], stored["metadatas"], strict=True)
        }
    return {"ids": sorted(stored["ids"]), "records": records, "chunk_hashes": chunk_hashes}


def _records_written(data: Path) -> int:
    if SERVERS:
        import psycopg
        from psycopg import sql

        schema = _servers(data)["KBAGENT_COLLECTION"]
        try:
            with psycopg.connect(SERVERS["KBAGENT_DATABASE_URL"], connect_timeout=2) as db:
                query = sql.SQL("SELECT count(*) FROM {}.sources").format(sql.Identifier(schema))
                return db.execute(query).fetchone()[0]  # type: ignore[index]
        except psycopg.Error:  # not created yet
            return 0
    try:
        with sqlite3.connect(data / "sources.sqlite3", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
    except sqlite3.Error:
        return 0


def _keyword_ids(data: Path, embedder) -> list[str]:  # type: ignore[no-untyped-def]
    with open_knowledge_base(_settings(data), embedder) as kb:
        return keyword_ids(kb)


@pytest.fixture(params=["embedded", pytest.param("servers", marks=parts.postgres())])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The embedded store, or a real Chroma server beside a real PostgreSQL."""
    if request.param == "servers":
        SERVERS.update(
            KBAGENT_CHROMA_URL=request.getfixturevalue("chroma_server"),
            KBAGENT_DATABASE_URL=request.getfixturevalue("database_url"),
        )
    yield request.param
    SERVERS.clear()


def test_kill_9_then_rerun_equals_clean_run(tmp_path: Path, embedder, backend: str) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "corpus", files=40)
    embedder.embed(["x " * 5000])  # the models' one-time exports (both engines), so the clean run times like a trial
    clean = tmp_path / "clean" / "data"
    clean.parent.mkdir()
    start = time.perf_counter()
    proc = _ingest(corpus, clean)
    first_write = all_written = None  # when the first record, and the last, were committed
    while all_written is None:
        running = proc.poll() is None  # asked before reading, so a run that just ended is read in full
        records = _records_written(clean)
        now = time.perf_counter() - start
        first_write = first_write or (now if records else None)
        all_written = now if records == 40 else None
        if not running:
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert first_write is not None and all_written is not None
    expected = _state(clean, embedder)
    assert len(expected["records"]) == 40  # type: ignore[arg-type]
    assert _keyword_ids(clean, embedder) == expected["ids"]

    trials = int(os.environ.get("KBAGENT_CRASH_TRIALS", "10"))
    rng = random.Random(int(os.environ.get("KBAGENT_CRASH_SEED", "20261128")))
    killed_at = []
    for trial in range(trials):
        data = tmp_path / f"trial{trial}" / "data"
        data.parent.mkdir()
        # Writes take a small part of the run, so the kills are spread over three windows in turn: before the
        # first write, between the first and the last, and anywhere up to just after the last.
        window = [(0.2, first_write), (first_write, all_written), (0.2, all_written * 1.1)][trial % 3]
        delay = rng.uniform(min(window), max(window))
        proc = _ingest(corpus, data)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at.append((round(delay, 2), _records_written(data)))
        rerun = _ingest(corpus, data)
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err.decode()[-2000:]
        assert json.loads(out)["failed"] == 0
        assert _state(data, embedder) == expected, f"trial {trial}: killed at {delay:.2f}s"
        assert _keyword_ids(data, embedder) == expected["ids"], f"trial {trial}: keyword index out of sync"
    print(f"kill points (seconds, records already written): {killed_at}")
    if trials >= 5:  # the kills landed before, between and after writes
        assert any(records == 0 for _, records in killed_at) and any(0 < r < 40 for _, r in killed_at)


def test_two_ingests_at_once_are_serialised(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "corpus", files=20)
    data = tmp_path / "data"
    first, second = _ingest(corpus, data), _ingest(corpus, data)
    (out1, err1), (out2, err2) = first.communicate(timeout=600), second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, (err1.decode()[-1000:], err2.decode()[-1000:])
    summaries = [json.loads(out1), json.loads(out2)]
    assert sorted(s["added"] for s in summaries) == [0, 20]
    assert sorted(s["unchanged"] for s in summaries) == [0, 20]
    assert "waiting" in (err1 + err2).decode()
    state = _state(data, embedder)
    assert len(state["records"]) == 20 and _keyword_ids(data, embedder) == state["ids"]  # type: ignore[arg-type]


def test_searches_answer_while_an_ingest_runs(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Another process writing the embedded store: searches still answer (from the keyword index when Chroma's
    in-memory vector index can't follow the other process's writes; a `chroma run` server has no such gap)."""
    first = _corpus(tmp_path / "first", files=5)
    data = tmp_path / "data"
    proc = _ingest(first, data)
    proc.communicate(timeout=600)
    assert proc.returncode == 0
    big = _corpus(tmp_path / "big", files=60)
    proc = _ingest(big, data)
    answered = 0
    with open_knowledge_base(Settings(data_dir=data, _env_file=None), embedder) as kb:
        while proc.poll() is None and answered < 20:
            hits = kb.search("Document 3 part 1 sentence", k=5)
            assert hits and all(h.page_content for h in hits)
            answered += 1
            time.sleep(0.2)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert answered >= 3 and json.loads(out)["added"] == 60


WATCH_ONCE = [sys.executable, "-c", "from kbagent.cli import main; main()", "watch", "--once"]


def _watch_once(corpus: Path, data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*WATCH_ONCE, str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "KBAGENT_DATA_DIR": str(data), "KBAGENT_WRITE_BATCH_CHUNKS": "24"},
        cwd=data.parent,
    )


def _change_while_stopped(corpus: Path) -> None:
    """Edits, deletions, moves (into a subfolder: a new doc type) and new files: every kind of step a sync takes."""
    (corpus / "moved").mkdir()
    for i in range(0, 10):
        path = corpus / f"doc{i:03}.md"
        path.write_text(path.read_text(encoding="utf-8") + f"\n## Addendum\n\nRevision {i} of this note.\n")
    for i in range(10, 18):
        (corpus / f"doc{i:03}.md").unlink()
    for i in range(18, 26):
        (corpus / f"doc{i:03}.md").rename(corpus / "moved" / f"doc{i:03}.md")
    for i in range(10):
        (corpus / f"new{i:03}.md").write_text(f"# New {i}\n\nA new note number {i} about valves.\n", encoding="utf-8")


def _records_since(data: Path, since: float) -> int:
    try:
        with sqlite3.connect(data / "sources.sqlite3", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM sources WHERE ingested_at > ?", (since,)).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_during_a_watch_sync_then_restart_equals_clean_sync(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    embedder.embed(["x " * 5000])  # the models' one-time exports, before any run
    corpus = _corpus(tmp_path / "corpus", files=40)
    base = tmp_path / "base" / "data"
    base.parent.mkdir()
    proc = _watch_once(corpus, base)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    _change_while_stopped(corpus)

    clean = tmp_path / "clean" / "data"
    clean.parent.mkdir()
    shutil.copytree(base, clean)
    proc = _watch_once(corpus, clean)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    shown = out.decode()
    assert "10 added, 10 updated, " in shown and " 0 failed, " in shown and "8 removed, 8 moved" in shown, shown
    expected = _state(clean, embedder)
    assert len(expected["records"]) == 42  # type: ignore[arg-type]
    assert _keyword_ids(clean, embedder) == expected["ids"]

    # A second clean sync, timed: when its first record comes (the first run after the base paid one-time costs).
    timed = tmp_path / "timed" / "data"
    timed.parent.mkdir()
    shutil.copytree(base, timed)
    since, start = time.time(), time.perf_counter()
    proc = _watch_once(corpus, timed)
    first_write = None
    while proc.poll() is None and first_write is None:
        first_write = time.perf_counter() - start if _records_since(timed, since) else None
        time.sleep(0.02)
    assert proc.wait(600) == 0 and first_write is not None, "the timed sync wrote nothing"
    assert _state(timed, embedder) == expected  # and one clean sync is like another

    trials = int(os.environ.get("KBAGENT_CRASH_TRIALS", "6"))
    rng = random.Random(int(os.environ.get("KBAGENT_CRASH_SEED", "20261129")))
    killed_at = []
    for trial in range(trials):
        data = tmp_path / f"trial{trial}" / "data"
        data.parent.mkdir()
        shutil.copytree(base, data)
        # Kill before the first write, after some of the 28 records (edits, moves, new files), or after them all
        # (the removals), judged by the records this run has written: timings vary too much on a shared machine.
        target = [0, rng.randint(1, 27), 28][trial % 3]
        since = time.time()
        proc = _watch_once(corpus, data)
        if target == 0:
            time.sleep(rng.uniform(0.2, 0.8) * first_write)
        else:
            while proc.poll() is None and _records_since(data, since) < target:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3) if target == 28 else 0.0)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not finished or proc.returncode == 0, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        killed_at.append((target, "finished" if finished else _records_since(data, since)))
        rerun = _watch_once(corpus, data)
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err.decode()[-2000:]
        assert _state(data, embedder) == expected, f"trial {trial}: killed after {killed_at[-1][1]} records"
        assert _keyword_ids(data, embedder) == expected["ids"], f"trial {trial}: keyword index out of sync"
        with sqlite3.connect(data / "sources.sqlite3") as db:
            assert db.execute("SELECT COUNT(*) FROM pending_deletes").fetchone()[0] == 0
    print(f"watch sync kill points (records aimed at, records written when killed): {killed_at}")
    if trials >= 3:  # the kills landed before and during the writes
        assert any(n == 0 for _, n in killed_at) and any(isinstance(n, int) and n > 0 for _, n in killed_at)
