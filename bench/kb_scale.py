"""Search latency in many small knowledge bases against one large one, and the memory of a process with them open.

    .venv/bin/python bench/kb_scale.py [--kbs 20] [--chunks 5000] [--queries 200] [--store DIR] [--out kb_scale]

One data dir holds `--kbs` knowledge bases of `--chunks` chunks each (made as `kbagent kb create` makes them) and
one knowledge base of kbs x chunks chunks. The chunks are synthetic: texts of 100 words drawn Zipf-like from a
5,000-word vocabulary, and fixed random unit vectors (seeded) written straight into each collection, keyword index
and records. Embedding 200,000 chunks on two shared cores would take hours and measure the embedder, not the
search. Queries are 2-4 words of the same vocabulary, embedded by the real shipped model, so each search is the
app's whole path (query embedding, dense and keyword search, fusion, the catalog's check that the knowledge base
still exists). Hybrid, k=10. The two cases take turns query by query (paired, under a shared CPU); each small
knowledge base is searched once before timing, and that first search (opening its index) is reported apart.

Memory: a fresh process loads the embedder, then opens the small knowledge bases through `Components` and
searches each once; its resident memory before and after. The same for a process that opens the large one.
`--store` keeps the data dir for reruns (built once). Writes bench/results/kb_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from record import save  # bench/record.py: every result file with its command

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from kbagent.components import Components
from kbagent.knowledge_bases import KnowledgeBases
from kbagent.settings import Settings
from knowledge_base.keyword_index import KeywordRow
from knowledge_base.records import SourceRecord
from knowledge_base.retrieval import SearchOptions

VOCABULARY = 5000
WORDS_PER_CHUNK = 100
CHUNKS_PER_SOURCE = 50
STEP = 5000
DIM = 384  # the shipped model's


def words() -> list[str]:
    """A fixed vocabulary of made-up words (no two alike)."""
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    made = {"".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(VOCABULARY * 2)}
    return sorted(made)[:VOCABULARY]


def zipf_weights(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** 1.07
    return weights / weights.sum()


def fill(kb: object, size: int, seed: int, vocabulary: list[str]) -> None:
    """`size` synthetic chunks straight into the knowledge base's collection, keyword index and records."""
    rng = np.random.default_rng(seed)
    weights = zipf_weights(len(vocabulary))
    lexicon = np.array(vocabulary)
    for start in range(0, size, STEP):
        count = min(STEP, size - start)
        vectors = rng.standard_normal((count, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        drawn = rng.choice(len(lexicon), size=(count, WORDS_PER_CHUNK), p=weights)
        texts = [" ".join(lexicon[row]) for row in drawn]
        ids = [f"c{start + n}" for n in range(count)]
        sources = [f"synthetic://{seed}/{(start + n) // CHUNKS_PER_SOURCE}" for n in range(count)]
        metas = [{"source": s, "doc_type": "synthetic", "title": s, "chunk_index": n} for n, s in enumerate(sources)]
        kb.collection.add(ids=ids, embeddings=vectors, metadatas=metas)  # type: ignore[attr-defined]
        by_source: dict[str, list[str]] = {}
        for chunk_id, source in zip(ids, sources, strict=True):
            by_source.setdefault(source, []).append(chunk_id)
        rows = [KeywordRow(i, s, "synthetic", t) for i, s, t in zip(ids, sources, texts, strict=True)]
        records = [SourceRecord(s, s, s, "synthetic", "url", chunks) for s, chunks in by_source.items()]
        with kb.records.transaction():  # type: ignore[attr-defined]
            kb.keywords.replace_sources(list(by_source), rows)  # type: ignore[attr-defined]
            kb.records.put_many(records)  # type: ignore[attr-defined]


def build(settings: Settings, kbs: int, chunks: int) -> None:
    """The data dir, unless an earlier run built it."""
    vocabulary = words()
    with Components(settings) as parts:
        admin = KnowledgeBases(parts)
        have = {info.name for info in admin.list()}
        wanted = [(f"small{n:02}", chunks, n) for n in range(kbs)] + [("large", kbs * chunks, 1000)]
        for name, size, seed in wanted:
            if name in have:
                continue
            admin.create(name)
            started = time.perf_counter()
            fill(parts.knowledge_base(name), size, seed, vocabulary)
            print(f"built {name}: {size} chunks in {time.perf_counter() - started:.0f}s", flush=True)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(settings: Settings, names: list[str]) -> None:
    """Run in a fresh process: resident memory with the embedder loaded, then with `names` open and searched."""
    with Components(settings) as parts:
        parts.embedder(settings.embedding.model).embed_query("warm up")
        before = rss_mb()
        for name in names:
            parts.knowledge_base(name).search("harbour", k=10)
        after = rss_mb()
    print(json.dumps({"rss_before_mb": round(before), "rss_after_mb": round(after)}))


def measure_memory(store: Path, names: list[str]) -> dict[str, float]:
    command = [sys.executable, __file__, "--store", str(store), "--memory-of", ",".join(names)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)


def latencies(settings: Settings, kbs: int, queries: int) -> dict[str, object]:
    rng = np.random.default_rng(7)
    vocabulary = words()
    weights = zipf_weights(len(vocabulary))
    asked = [" ".join(rng.choice(vocabulary, size=int(rng.integers(2, 5)), p=weights)) for _ in range(queries)]
    options = SearchOptions(mode="hybrid")
    small_ms: list[float] = []
    large_ms: list[float] = []
    first_ms: list[float] = []
    with Components(settings) as parts:
        large = parts.knowledge_base("large")
        large.search("warm up", k=10, options=options)
        smalls = []
        for n in range(kbs):
            start = time.perf_counter()
            kb = parts.knowledge_base(f"small{n:02}")
            kb.search("warm up", k=10, options=options)
            first_ms.append((time.perf_counter() - start) * 1000)
            smalls.append(kb)
        for i, query in enumerate(asked):
            for kb, into in [(smalls[i % kbs], small_ms), (large, large_ms)][:: 1 if i % 2 else -1]:
                start = time.perf_counter()
                kb.search(query, k=10, options=options)
                into.append((time.perf_counter() - start) * 1000)
    return {
        "queries": queries,
        "small_p50_ms": percentile(small_ms, 0.5),
        "small_p95_ms": percentile(small_ms, 0.95),
        "large_p50_ms": percentile(large_ms, 0.5),
        "large_p95_ms": percentile(large_ms, 0.95),
        "first_search_p50_ms": percentile(first_ms, 0.5),
        "first_search_max_ms": percentile(first_ms, 1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kbs", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--store", type=Path, default=None, help="keep the data dir here (built once)")
    parser.add_argument("--out", default="kb_scale")
    parser.add_argument("--memory-of", default="", help=argparse.SUPPRESS)  # the child process of measure_memory
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbagent-kb-scale-") as tmp:
        store = args.store or Path(tmp)
        settings = Settings(data_dir=store, _env_file=None)
        if args.memory_of:
            memory(settings, args.memory_of.split(","))
            return
        build(settings, args.kbs, args.chunks)
        figures: dict[str, object] = {"knowledge_bases": args.kbs, "chunks_each": args.chunks}
        figures["large_chunks"] = args.kbs * args.chunks
        figures.update(latencies(settings, args.kbs, args.queries))
        small = measure_memory(store, [f"small{n:02}" for n in range(args.kbs)])
        large = measure_memory(store, ["large"])
        figures["memory_small_open"] = small
        figures["memory_large_open"] = large
        opened = small["rss_after_mb"] - small["rss_before_mb"]
        figures["memory_per_small_kb_mb"] = round(opened / args.kbs, 1)
        figures["vectors"] = "synthetic: seeded random unit vectors written directly, no embedding"
        figures["cpu"] = "2 cores shared with other jobs (see load_average_1min)"
        print(json.dumps(figures, indent=2))
        save(args.out, figures)


if __name__ == "__main__":
    main()
