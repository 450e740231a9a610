"""Retrieval quality and latency per mode, on SciFact (BEIR) and on the sample knowledge base's question set.

    .venv/bin/python bench/retrieval.py [--store DIR] [--beir ../shared/bench/scifact] [--modes hybrid,dense,keyword]

`--store` keeps the ingested SciFact store between runs (the first ingest takes ~9 minutes on 2 cores).
Prints a table and writes bench/results/retrieval.json. Published SciFact nDCG@10 for comparison:
BM25 0.679, all-MiniLM-L6-v2 dense 0.645, bge-small-en-v1.5 dense 0.713.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from evaluation import evaluate_questions, load_questions
from evaluation.beir import ingest_corpus, read_queries, score_queries
from kbagent.components import Components
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase

ROOT = Path(__file__).resolve().parent.parent


def latency_ms(kb: KnowledgeBase, queries: list[str], options, k: int = 10) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for q in queries:
        start = time.perf_counter()
        kb.search(q, k=k, options=options)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def engine_of(kb: KnowledgeBase) -> str:
    """The engine that embedded the store: the calibration's choice where one was made."""
    calibration = getattr(kb.embedder, "calibration", None)
    return calibration.chosen if calibration is not None else str(getattr(kb.embedder, "chosen", None) or "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--modes", default="hybrid,dense,keyword")
    parser.add_argument("--questions", type=Path, default=ROOT / "samples" / "harborview_questions.jsonl")
    args = parser.parse_args()
    modes = args.modes.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        beir_settings = Settings(data_dir=args.store or Path(tmp) / "beir", collection="beir", _env_file=None)
        with Components(beir_settings) as parts:
            kb = parts.kb
            seconds = ingest_corpus(parts.ingestor(), args.beir)
            sample_queries = list(read_queries(args.beir).values())[:200]
            for mode in modes:
                options = replace(kb.default_options(), mode=mode)
                summary = score_queries(kb, args.beir, options, ingest_seconds=seconds).summary()
                p50, p95 = latency_ms(kb, sample_queries, options)
                rows.append(
                    {
                        "set": args.beir.name,
                        "mode": mode,
                        "ndcg@10": summary["ndcg@10"],
                        "recall@100": summary["recall@100"],
                        "mrr@10": summary["mrr@10"],
                        "p50_ms@k10": round(p50, 1),
                        "p95_ms@k10": round(p95, 1),
                        "chunks": kb.collection.count(),
                        "embedding_engine": engine_of(kb),
                    }
                )
                print(rows[-1], flush=True)

        sample_settings = Settings(data_dir=Path(tmp) / "sample", _env_file=None)
        with Components(sample_settings) as parts:
            kb = parts.kb
            parts.ingest([ROOT / "samples" / "harborview"])
            questions = load_questions(args.questions)
            for mode in modes:
                options = replace(kb.default_options(), mode=mode)
                overall = evaluate_questions(kb, questions, 10, options).summary()["overall"]
                p50, p95 = latency_ms(kb, [q.question for q in questions], options)
                rows.append(
                    {
                        "set": "harborview",
                        "mode": mode,
                        "mrr": overall["mrr"],
                        "ndcg@10": overall["ndcg"],
                        "coverage": overall["coverage"],
                        "p50_ms@k10": round(p50, 1),
                        "p95_ms@k10": round(p95, 1),
                        "chunks": kb.collection.count(),
                    }
                )
                print(rows[-1], flush=True)

    columns = [
        "set",
        "mode",
        "ndcg@10",
        "recall@100",
        "mrr@10",
        "mrr",
        "coverage",
        "p50_ms@k10",
        "p95_ms@k10",
        "chunks",
    ]
    print("\n" + " | ".join(columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")) for c in columns))
    save("retrieval", rows)


if __name__ == "__main__":
    main()
