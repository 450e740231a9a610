"""Hybrid query latency (k=10) at 10k and 100k chunks, process RSS, and the dense index's recall@10 against
exact search.

    .venv/bin/python bench/query_scale.py --store /tmp/scifact-store [--sizes 10000,100000]
        [--backends embedded,postgres] [--out query_scale]

The vectors are real text embeddings: the SciFact store built by `bench/retrieval.py --store` (12k chunks)
is read back, and larger sizes are filled with those vectors plus small noise (re-normalised), each with a
synthetic text made of words from the corpus. Queries are real SciFact queries. Also
reports how much of exact BM25's top 10 the keyword index's cost budget (KBAGENT_KEYWORD_MAX_SCORED_ROWS)
keeps. `--backends embedded,postgres` measures both: the keyword index in SQLite FTS5, and in PostgreSQL (a
throwaway server from Debian's package, or `--database-url`). Writes bench/results/query_scale.json.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from record import save  # bench/record.py: every result file with its command

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from evaluation.beir import read_queries
from kbagent.components import open_knowledge_base
from kbagent.settings import Settings
from knowledge_base.keyword_index import KeywordRow
from knowledge_base.records import SourceRecord
from knowledge_base.retrieval import SearchOptions
from knowledge_base.store import batched

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="a store made by bench/retrieval.py --store")
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", default="embedded")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", default="query_scale")
    args = parser.parse_args()
    stack = ExitStack()
    database_url = args.database_url
    if "postgres" in args.backends and not database_url:
        from postgres_scifact import start_postgres

        database_url = start_postgres(stack)
    source = open_knowledge_base(Settings(data_dir=args.store, collection="beir", _env_file=None))
    base = source.collection.get(include=["embeddings"])
    vectors = np.asarray(base["embeddings"], dtype=np.float32)
    stored = [row.text for part in batched(base["ids"], 5000) for row in source.keywords.rows(part)]
    words = " ".join(stored).split()
    queries = list(read_queries(args.beir).values())[: args.queries]
    query_vectors = np.asarray(source.embedder.embed(queries), dtype=np.float32)
    rng = np.random.default_rng(0)
    random.seed(0)
    rows = []
    for size, backend in [(n, b) for n in map(int, args.sizes.split(",")) for b in args.backends.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            url = database_url if backend == "postgres" else ""
            settings = Settings(data_dir=Path(tmp), collection=f"scale{size}", database_url=url, _env_file=None)
            kb = open_knowledge_base(settings, source.embedder)
            reps = -(-size // len(vectors))
            pool = np.concatenate(
                [vectors + (0 if r == 0 else rng.normal(0, 0.02, vectors.shape)) for r in range(reps)]
            )
            pool = (pool[:size] / np.linalg.norm(pool[:size], axis=1, keepdims=True)).astype(np.float32)
            start = time.perf_counter()
            ids, step = [f"c{i}" for i in range(size)], 5000
            for i in range(0, size, step):
                texts = [" ".join(random.choices(words, k=60)) for _ in range(min(step, size - i))]
                metas = [{"source": f"synthetic:{j // 10}", "doc_type": "synthetic"} for j in range(i, i + len(texts))]
                kb.collection.add(
                    ids=ids[i : i + len(texts)],
                    embeddings=pool[i : i + len(texts)],
                    documents=texts if kb.texts_in_chroma else None,
                    metadatas=metas,
                )
                rows_kw = [KeywordRow(ids[i + n], metas[n]["source"], "synthetic", t) for n, t in enumerate(texts)]
                with kb.records.transaction():
                    kb.keywords.replace_sources([], rows_kw)
            kb.records.put_many([SourceRecord(f"synthetic:{s}", "x") for s in range(-(-size // 10))])
            build_s = time.perf_counter() - start

            exact_hits = []
            for q in query_vectors:
                exact_hits.append({ids[i] for i in np.argpartition(-(pool @ q), 10)[:10]})
            recall = []
            for q, exact in zip(query_vectors, exact_hits, strict=True):
                got = kb.collection.query(query_embeddings=[q], n_results=10, include=[])["ids"][0]
                recall.append(len(exact & set(got)) / 10)

            # The keyword index's cost budget against exact BM25 (no budget) on the same queries.
            budget = kb.keywords.max_scored_rows
            pruned = [{h.chunk_id for h in kb.keywords.search(q, 10)} for q in queries]
            kb.keywords.max_scored_rows = 0
            exact_kw = [{h.chunk_id for h in kb.keywords.search(q, 10)} for q in queries]
            kb.keywords.max_scored_rows = budget
            kw_overlap = [len(a & b) / len(b) for a, b in zip(pruned, exact_kw, strict=True) if b]

            latencies = []
            options = SearchOptions(mode="hybrid")
            for q in queries:
                t0 = time.perf_counter()
                kb.search(q, k=10, options=options)
                latencies.append((time.perf_counter() - t0) * 1000)
            latencies.sort()
            rows.append(
                {
                    "backend": backend,
                    "chunks": size,
                    "build_s": round(build_s, 1),
                    "recall@10_vs_exact": round(statistics.mean(recall), 4),
                    "keyword_overlap@10_vs_unbudgeted": round(statistics.mean(kw_overlap), 4),
                    "hybrid_p50_ms": round(latencies[len(latencies) // 2], 1),
                    "hybrid_p95_ms": round(latencies[int(len(latencies) * 0.95)], 1),
                    "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                }
            )
            print(rows[-1], flush=True)
            kb.close()
    stack.close()
    save(args.out, rows)


if __name__ == "__main__":
    main()
