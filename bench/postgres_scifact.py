"""Keyword and hybrid search on SciFact: the embedded backend (SQLite FTS5) against PostgreSQL (BM25 in SQL).

    .venv/bin/python bench/postgres_scifact.py [--store DIR] [--database-url postgresql://…]

Ingests SciFact into an embedded store (kept in `--store` between runs), copies it into PostgreSQL with
`kbagent migrate`'s code (the vectors stay in the same embedded Chroma, so only the keyword side differs), then
scores both. Without `--database-url` it starts a throwaway PostgreSQL from Debian's package (as the tests do).
Writes bench/results/postgres_scifact.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrieval import latency_ms  # noqa: E402  bench/retrieval.py

from evaluation.beir import ingest_corpus, read_queries, score_queries  # noqa: E402
from kbagent.components import Components, migrate  # noqa: E402
from kbagent.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "bench" / "scifact")
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = args.database_url or start_postgres(stack)
        embedded = Settings(data_dir=args.store or Path(tmp) / "beir", collection="beir", _env_file=None)
        with Components(embedded) as parts:
            ingest_corpus(parts.ingestor(), args.beir)
            embedder = parts.kb.embedder
        print("copied:", migrate(embedded, url, embedder=embedder), flush=True)
        queries = list(read_queries(args.beir).values())[:200]
        for backend, settings in (("embedded", embedded), ("postgres", embedded.override(database_url=url))):
            with Components(settings, embedder=embedder) as parts:
                kb = parts.kb
                for mode in ("keyword", "hybrid"):
                    options = replace(kb.default_options(), mode=mode)
                    summary = score_queries(kb, args.beir, options).summary()
                    p50, p95 = latency_ms(kb, queries, options)
                    rows.append(
                        {
                            "backend": backend,
                            "mode": mode,
                            "ndcg@10": summary["ndcg@10"],
                            "recall@100": summary["recall@100"],
                            "p50_ms@k10": round(p50, 1),
                            "p95_ms@k10": round(p95, 1),
                            "chunks": kb.collection.count(),
                        }
                    )
                    print(rows[-1], flush=True)
    for mode in ("keyword", "hybrid"):
        embedded_row, pg_row = (r for r in rows if r["mode"] == mode)
        print(f"{mode}: nDCG@10 difference {pg_row['ndcg@10'] - embedded_row['ndcg@10']:+.4f}")
    save("postgres_scifact", {"rows": rows, "note": "2 CPU cores shared with other jobs: latencies are contended"})


def start_postgres(stack: ExitStack) -> str:
    import socket

    from tests.support.pg_server import new_database, postgres_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = stack.enter_context(postgres_server(port))
    return new_database(server.url)


if __name__ == "__main__":
    main()
