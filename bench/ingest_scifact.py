"""Ingest throughput, re-ingest cost and search cold start on SciFact documents written out as files.

    .venv/bin/python bench/ingest_scifact.py [--docs 1000] [--corpus ../shared/bench/scifact/corpus.jsonl]

Prints a table and writes bench/results/ingest_scifact.json. Each step runs `kbagent` as a fresh process,
as a user would, so model loading and imports are included in the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "bench" / "scifact" / "corpus.jsonl"


def write_docs(corpus: Path, folder: Path, limit: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            if count >= limit:
                break
            doc = json.loads(line)
            (folder / f"{doc['id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n", encoding="utf-8")
            count += 1
    return count


def kbagent(*args: str, data: Path) -> tuple[float, str]:
    env = {**os.environ, "KBAGENT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from kbagent.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        docs, data = Path(tmp) / "docs", Path(tmp) / "data"
        n = write_docs(args.corpus, docs, args.docs)
        wall, out = kbagent("ingest", str(docs), "--json", data=data)
        first = json.loads(out)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rewall, out = kbagent("ingest", str(docs), "--json", data=data)
        again = json.loads(out)
        searches = [
            kbagent("search", "vitamin D deficiency and bone fractures", "-k", "10", data=data)[0] for _ in range(3)
        ]

    results = {
        "docs": n,
        "chunks": first["embedded_chunks"],
        "ingest_wall_s": round(wall, 2),
        "ingest_reported_s": first["seconds"],
        "docs_per_s_wall": round(n / wall, 1),
        "chunks_per_s_wall": round(first["embedded_chunks"] / wall, 1),
        "chunks_per_s_pipeline": round(first["embedded_chunks"] / first["seconds"], 1),
        "peak_rss_mb": round(peak_rss_mb),
        "reingest_wall_s": round(rewall, 2),
        "reingest_embedded": again["embedded_chunks"],
        "reingest_unchanged": again["unchanged"],
        "search_cold_wall_s_median": round(statistics.median(searches), 2),
    }
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    save("ingest_scifact", results)


if __name__ == "__main__":
    main()
