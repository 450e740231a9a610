"""`kill -9` in the middle of an ingest, then a rerun: the store must equal that of one clean run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbagent.settings import Settings
from knowledge_base import KnowledgeBase

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


def _ingest(corpus: Path, data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*INGEST, str(corpus), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "KBAGENT_DATA_DIR": str(data)},
        cwd=data.parent,
    )


def _state(data: Path, embedder) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with KnowledgeBase.open(Settings(data_dir=data, _env_file=None), embedder=embedder) as kb:
        stored = kb.collection.get(include=["metadatas"])
        records = {r.source: (r.content_hash, sorted(r.chunk_ids)) for r in kb.sources()}
        chunk_hashes = {
            i: (m["source"], m["content_hash"]) for i, m in zip(stored["ids"], stored["metadatas"], strict=True)
        }
    return {"ids": sorted(stored["ids"]), "records": records, "chunk_hashes": chunk_hashes}


def _records_written(data: Path) -> int:
    try:
        with sqlite3.connect(data / "sources.sqlite3", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_then_rerun_equals_clean_run(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus(tmp_path / "corpus")
    clean = tmp_path / "clean" / "data"
    clean.parent.mkdir()
    proc = _ingest(corpus, clean)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    expected = _state(clean, embedder)
    assert len(expected["records"]) == 80  # type: ignore[arg-type]

    # Kill points: while the first group is being embedded (no record yet), and after some groups landed.
    for trial, after_records in enumerate((0, 1)):
        data = tmp_path / f"trial{trial}" / "data"
        data.parent.mkdir()
        proc = _ingest(corpus, data)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            written = _records_written(data)
            chroma_started = (data / "chroma" / "chroma.sqlite3").exists()
            if (after_records == 0 and chroma_started and written == 0 and _chunks_in_chroma(data)) or (
                after_records and written >= after_records
            ):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "ingest finished before it could be killed; make the corpus bigger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        rerun = _ingest(corpus, data)
        out, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err.decode()[-2000:]
        summary = json.loads(out)
        assert summary["failed"] == 0
        assert _state(data, embedder) == expected, f"trial {trial}"


def _chunks_in_chroma(data: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{data / 'chroma' / 'chroma.sqlite3'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] > 0
    except sqlite3.Error:
        return False
