"""Watched folders: what a move costs with its vectors kept, against the same change as a delete and an add.

    .venv/bin/python bench/watch_moves.py [--docs N]      # default 300 SciFact documents as Markdown files

Ingests the files as a watched folder, moves every one of them into a subfolder, and times the sync that
follows twice, on copies of the same store: as `kbagent watch` does it (moves detected, vectors copied), and
with move detection off (every moved file embedded again). Writes bench/results/watch_moves.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from ingest_scifact import DEFAULT_CORPUS, write_docs  # noqa: E402

from ingest import IngestConfig, build_ingestor  # noqa: E402
from ingest.pipeline import Ingestor  # noqa: E402
from ingest.watch import FolderWatcher  # noqa: E402
from kbagent.components import open_knowledge_base  # noqa: E402
from kbagent.settings import Settings  # noqa: E402
from knowledge_base.embeddings import build_embedder  # noqa: E402


class NoMoves(Ingestor):
    """The baseline: a moved file is a removed one and a new one."""

    def _moves(self, *args: object) -> dict[str, str]:
        return {}


def timed_sync(data: Path, folder: Path, embedder: object, detect_moves: bool) -> dict[str, float | int]:
    with open_knowledge_base(Settings(data_dir=data, _env_file=None), embedder) as kb:  # type: ignore[arg-type]
        ingestor = build_ingestor(IngestConfig(), kb)
        if not detect_moves:
            ingestor = NoMoves(kb, ingestor.chunker)
        start = time.perf_counter()
        result = FolderWatcher(ingestor, [folder]).sync(folder)
        seconds = time.perf_counter() - start
    assert result.report is not None
    counts = result.report.counts
    return {"seconds": round(seconds, 2), "embedded_chunks": result.report.embedded, **counts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    embedder = build_embedder(settings.embedding, settings.store.models_path)
    embedder.embed(["warm up " * 100])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        written = write_docs(DEFAULT_CORPUS, folder / "papers", args.docs)
        base = Path(tmp) / "base"
        first = timed_sync(base, folder, embedder, True)
        (folder / "papers").rename(folder / "moved")  # one folder event in a watch; every file a new path
        figures = {"docs": written, "first_sync": first}
        for name, detect in (("moves_kept", True), ("delete_and_add", False)):
            data = Path(tmp) / name
            shutil.copytree(base, data)
            figures[name] = timed_sync(data, folder, embedder, detect)
    figures["note"] = "2 shared CPU cores, other jobs running: compare the two rows, not the absolute seconds"
    print(figures)
    save("watch_moves", figures)


if __name__ == "__main__":
    main()
