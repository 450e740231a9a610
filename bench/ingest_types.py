"""Ingest throughput for the file types of issue 19: a generated folder of 100 files, 20 each of .pptx (8 slides),
.xlsx (2 sheets, 60 rows), .epub (6 chapters), .eml and .json, through kbagent's real pipeline and embedder.

    .venv/bin/python bench/ingest_types.py [--files 100]
    .venv/bin/python bench/ingest_types.py --compare-workers 4   # the worker pool against reading in-process

Reports files/s, chunks/s and seconds for the whole ingest, and each type's reading time alone (the loaders,
without chunking or embedding: the pipeline reads in a background thread while it embeds, so the whole ingest
shows only the slower of the two). Writes bench/results/ingest_types.json.

With --compare-workers N: N pairs of whole ingests of the same folder into fresh knowledge bases, files read
by the worker pool (KBAGENT_READ_WORKERS=2, the default) or in the ingest's own process (0, the path before the
pool), in alternating order (ABBA...) so drift on a shared machine falls on both; writes
bench/results/ingest_workers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.loaders import load  # noqa: E402
from tests.support.files import WORDS, filler, write_epub, write_pptx, write_xlsx  # noqa: E402

KINDS = ("pptx", "xlsx", "epub", "eml", "json")


def write_file(folder: Path, kind: str, n: int, rng: random.Random) -> Path:
    path = folder / f"{kind}-{n:03d}.{kind}"
    if kind == "pptx":
        slides: list[dict[str, object]] = [
            {"title": f"Topic {n}.{s}", "bullets": [filler(rng, 1) for _ in range(4)], "notes": filler(rng, 2)}
            for s in range(8)
        ]
        write_pptx(path, slides, title=f"Deck {n}")
    elif kind == "xlsx":
        header = ["id", "vessel", "berth", "cargo", "tonnes"]
        rows = [[f"{n}-{r}", rng.choice(WORDS), f"B{r % 9}", rng.choice(WORDS), r * 3.5] for r in range(60)]
        write_xlsx(path, {"Arrivals": [header, *rows], "Notes": [["note"], *[[filler(rng, 1)] for _ in range(10)]]})
    elif kind == "epub":
        write_epub(path, f"Book {n}", [(f"Chapter {c}", f"{filler(rng, 6)}\n\n{filler(rng, 6)}") for c in range(6)])
    elif kind == "eml":
        message = EmailMessage()
        message["From"], message["To"] = "harbour@example.org", "crew@example.org"
        message["Subject"], message["Date"] = f"Shift {n}", "Mon, 2 Mar 2026 08:00:00 +0000"
        message.set_content("\n\n".join(filler(rng, 4) for _ in range(4)))
        path.write_bytes(bytes(message))
    else:
        items = [{"id": f"{n}-{i}", "name": rng.choice(WORDS), "notes": filler(rng, 2)} for i in range(20)]
        path.write_text(json.dumps({"items": items}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100, help="How many files, spread evenly over the types.")
    parser.add_argument("--compare-workers", type=int, default=0, metavar="N", help="N paired runs: pool vs none.")
    args = parser.parse_args()
    if args.compare_workers:
        compare_workers(args.files, args.compare_workers)
        return

    from ingest import IngestConfig, build_ingestor
    from kbagent.components import open_knowledge_base
    from kbagent.settings import Settings

    rng = random.Random(19)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        paths = [write_file(folder, KINDS[n % len(KINDS)], n, rng) for n in range(args.files)]
        reading: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for path in paths:
            raw = path.read_bytes()
            start = time.perf_counter()
            load(path, raw)
            reading[path.suffix[1:]].append(time.perf_counter() - start)
        settings = Settings(data_dir=Path(tmp) / "data", _env_file=None)
        with open_knowledge_base(settings) as kb:
            kb.embedder.embed(["warm-up"])  # the model's load is not the ingest's, nor the one-time calibration
            engine_for = getattr(kb.embedder, "engine_for", None)
            chosen = engine_for([filler(rng, 3) for _ in range(128)]) if engine_for else kb.embedder
            engine = getattr(chosen, "engine", kb.embedder.model_name)
            report = build_ingestor(IngestConfig(), kb).run([folder])
    counts = report.counts
    assert counts["added"] == args.files, report.outcomes
    figures: dict[str, Any] = {
        "files": args.files,
        "embedding_engine": engine,
        "chunks": report.embedded,
        "seconds": round(report.seconds, 2),
        "files_per_s": round(args.files / report.seconds, 2),
        "chunks_per_s": round(report.embedded / report.seconds, 1),
        "reading_ms_median": {kind: round(statistics.median(t) * 1000, 1) for kind, t in reading.items()},
        "load_average_1min_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "note": "CPU shared with other jobs (load average above 1.5): indicative only"
        if max(load_before, os.getloadavg()[0]) > 1.5
        else "CPU otherwise idle",
    }
    print(
        f"{args.files} files, {report.embedded} chunks in {report.seconds:.1f} s: "
        f"{figures['files_per_s']} files/s, {figures['chunks_per_s']} chunks/s; reading (median ms): "
        + ", ".join(f"{k} {v}" for k, v in figures["reading_ms_median"].items())
    )
    print(f"written to {save('ingest_types', figures)}")


def compare_workers(files: int, pairs: int) -> None:
    """Seconds of whole ingests with the worker pool and without, paired and interleaved."""
    from ingest import IngestConfig, build_ingestor
    from kbagent.components import open_knowledge_base
    from kbagent.settings import Settings

    rng = random.Random(19)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[float]] = {"workers_2": [], "in_process": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        for n in range(files):
            write_file(folder, KINDS[n % len(KINDS)], n, rng)
        order = [("workers_2", "in_process") if n % 2 == 0 else ("in_process", "workers_2") for n in range(pairs)]
        for n, pair in enumerate(order):
            for mode in pair:
                settings = Settings(data_dir=Path(tmp) / f"data-{n}-{mode}", _env_file=None)
                with open_knowledge_base(settings) as kb:
                    kb.embedder.embed(["warm-up"])
                    config = IngestConfig(read_workers=2 if mode == "workers_2" else 0)
                    report = build_ingestor(config, kb).run([folder])
                assert report.counts["added"] == files, report.outcomes
                runs[mode].append(report.seconds)
                print(f"pair {n + 1} {mode}: {report.seconds:.2f} s", file=sys.stderr)
    differences = [a - b for a, b in zip(runs["workers_2"], runs["in_process"], strict=True)]
    figures = {
        "files": files,
        "pairs": pairs,
        "seconds": {mode: [round(s, 2) for s in times] for mode, times in runs.items()},
        "median_s": {mode: round(statistics.median(times), 2) for mode, times in runs.items()},
        "pool_minus_in_process_s": [round(d, 2) for d in differences],
        "pool_minus_in_process_median_s": round(statistics.median(differences), 2),
        "pool_slower_in_pairs": sum(d > 0 for d in differences),
        "load_average_1min_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "note": "whole ingests (pool start, reading, embedding, writing) into fresh knowledge bases; "
        "CPU shared with other jobs when the load average is above 1.5",
    }
    print(json.dumps(figures, indent=2))
    print(f"written to {save('ingest_workers', figures)}")


if __name__ == "__main__":
    main()
