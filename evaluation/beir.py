"""A BEIR-style folder (corpus.jsonl, queries.jsonl, qrels.tsv): ingest the corpus, score against qrels.

Chunks are mapped back to their documents; a document ranks by its best chunk.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.metrics import mean, ndcg, recall, reciprocal_rank
from ingest import Ingestor, Progress, TextSource
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions

if TYPE_CHECKING:
    from agent.events import JsonValue

SOURCE_PREFIX = "beir:"


@dataclass
class BeirResult:
    name: str
    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    ingest_seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    per_query: list[dict[str, JsonValue]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:  # the CLI's table reads its figures as numbers and text
        lat = sorted(self.latencies_ms)
        return {
            "dataset": self.name,
            "mode": self.mode,
            "queries": self.queries,
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "ingest_seconds": round(self.ingest_seconds, 1),
            "latency_ms_p50": round(lat[len(lat) // 2], 1) if lat else None,
            "latency_ms_p95": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 1) if lat else None,
        }


def read_corpus(folder: Path) -> Iterator[TextSource]:
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                doc = json.loads(line)
                title = str(doc.get("title") or "")
                text = f"# {title}\n\n{doc['text']}" if title else str(doc["text"])
                yield TextSource(f"{SOURCE_PREFIX}{doc['_id'] if '_id' in doc else doc['id']}", text, title, "beir")


def read_queries(folder: Path) -> dict[str, str]:
    out = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                q = json.loads(line)
                out[str(q.get("_id", q.get("id")))] = q["text"]
    return out


def read_qrels(folder: Path) -> dict[str, set[str]]:
    qrels: dict[str, set[str]] = {}
    with (folder / "qrels.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row.get("score", 1)) > 0:
                qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    return qrels


def ingest_corpus(ingestor: Ingestor, folder: Path, progress: Progress | None = None) -> float:
    """Seconds taken to ingest the corpus (nothing, on a store that already holds it)."""
    start = time.perf_counter()
    ingestor.run_texts(read_corpus(folder), progress=progress)
    return time.perf_counter() - start


def score_queries(
    kb: KnowledgeBase,
    folder: Path,
    options: SearchOptions | None = None,
    on_query: Callable[[], None] | None = None,
    limit: int | None = None,
    ingest_seconds: float = 0.0,
) -> BeirResult:
    # Enough chunks per query to rank 100 distinct documents for Recall@100.
    options = replace(options or kb.default_options(), candidates=300)
    queries = read_queries(folder)
    qrels = read_qrels(folder)
    judged = [qid for qid in queries if qid in qrels][:limit]
    ndcgs, recalls, rrs, latencies = [], [], [], []
    per_query: list[dict[str, JsonValue]] = []
    for qid in judged:
        t0 = time.perf_counter()
        docs = kb.search(queries[qid], k=300, options=options)
        latencies.append((time.perf_counter() - t0) * 1000)
        ranking = list(dict.fromkeys(d.metadata["source"].removeprefix(SOURCE_PREFIX) for d in docs))
        relevant = qrels[qid]
        hits = [doc_id in relevant for doc_id in ranking]
        ndcgs.append(ndcg(hits, 10, len(relevant)))
        recalls.append(recall(hits, 100, len(relevant)))
        rrs.append(reciprocal_rank(hits, 10))
        per_query.append({"query_id": qid, "ndcg@10": ndcgs[-1], "top10": ranking[:10], "relevant": sorted(relevant)})
        if on_query:
            on_query()
    return BeirResult(
        folder.name,
        options.mode,
        len(judged),
        mean(ndcgs),
        mean(recalls),
        mean(rrs),
        ingest_seconds,
        latencies,
        per_query,
    )


def evaluate_beir(
    kb: KnowledgeBase,
    ingestor: Ingestor,
    folder: Path,
    options: SearchOptions | None = None,
    progress: Progress | None = None,
    limit: int | None = None,
) -> BeirResult:
    seconds = ingest_corpus(ingestor, folder, progress)
    return score_queries(kb, folder, options, limit=limit, ingest_seconds=seconds)


def count_judged(folder: Path) -> int:
    qrels = read_qrels(folder)
    return sum(1 for qid in read_queries(folder) if qid in qrels)
