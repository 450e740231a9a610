"""Robustness: thousands of hostile and broken files of every type kbagent reads, through its real ingest in one
run (tests/support/hostile.py makes them: bombs a review reproduced, and Hypothesis mutations of valid files).

    .venv/bin/python bench/robustness.py [--mutants 3000] [--timeout 10] [--memory-mb 2048]

The ingest runs in a child process (kbagent's pipeline, worker pool and embedder, as `kbagent ingest` runs
them), with KBAGENT_READ_TIMEOUT_S=--timeout (default 10 s here; 60 s is the product's default),
KBAGENT_READ_MEMORY_MB=--memory-mb (RLIMIT_AS of each worker), OCR limits to match, and a small character
budget so the bombs' text embeds in seconds. It checks that every file ends ingested or reported in one line,
that nothing crashed or printed a traceback, and that no file took longer than its limits allow; Ctrl+C stops
the run within seconds. Writes bench/results/robustness.json: counts, the slowest files, peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, threading, time
from pathlib import Path
from ingest import IngestConfig, build_ingestor
from kbagent.components import open_knowledge_base
from kbagent.settings import Settings

folder, timeout, memory = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
config = IngestConfig(
    read_timeout_s=timeout, read_memory_mb=memory, ocr="tesseract", ocr_timeout_s=timeout,
    ocr_budget_s=2 * timeout, max_text_mb=0.2, max_pages=100,
)
timings = {}

def timed(make):
    def build(settings):
        reader = make(settings)
        read = reader.read
        def timed_read(path, raw, **kwargs):
            start = time.perf_counter()
            result = read(path, raw, **kwargs)
            seconds = time.perf_counter() - start
            entry = timings.setdefault(path.name, {"seconds": 0.0, "peak_mb": 0.0})
            entry["seconds"] += seconds
            entry["peak_mb"] = max(entry["peak_mb"], result.peak_mb)
            return result
        reader.read = timed_read
        return reader
    return build

settings = Settings(_env_file=None)
with open_knowledge_base(settings) as kb:
    ingestor = build_ingestor(config, kb)
    ingestor.reader = timed(ingestor.reader)
    start = time.perf_counter()
    report = ingestor.run([folder])
    wall = time.perf_counter() - start
files = [
    {"name": Path(o.source).name, "status": o.status, "message": o.message, "notes": o.notes, "retry": o.retry,
     **timings.get(Path(o.source).name, {"seconds": 0.0, "peak_mb": 0.0})}
    for o in report.outcomes
]
print(json.dumps({"wall_s": wall, "embedded": report.embedded, "files": files}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=3000, help="Mutated files, spread over the types.")
    parser.add_argument("--timeout", type=float, default=10.0, help="Seconds to read one file (and OCR a page).")
    parser.add_argument("--memory-mb", type=int, default=2048, help="Address space of each reading worker.")
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--out", default="robustness", help="Result file name under bench/results.")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from record import save  # bench/record.py: every result file with its command

    from tests.support.hostile import write_all

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hostile"
        start = time.perf_counter()
        paths = write_all(folder, args.mutants, args.seed)
        made_s = time.perf_counter() - start
        print(f"{len(paths)} files made in {made_s:.0f} s; ingesting", file=sys.stderr)
        env = {**os.environ, "KBAGENT_DATA_DIR": str(Path(tmp) / "data"), "HF_HUB_OFFLINE": "1"}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(folder), str(args.timeout), str(args.memory_mb)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp,
        )
        try:
            out, err = child.communicate()
        except KeyboardInterrupt:  # the child had its own Ctrl+C (same terminal): give it seconds to stop
            child.send_signal(signal.SIGINT)
            stopping = time.monotonic()
            try:
                child.communicate(timeout=10)
            finally:
                child.kill()
            print(f"interrupted; the ingest stopped in {time.monotonic() - stopping:.1f} s", file=sys.stderr)
            raise SystemExit(130) from None
        peak_any_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if child.returncode != 0 or not out.strip():
        raise SystemExit(f"the ingest process failed (exit {child.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    files = result["files"]
    names = {Path(p).name for p in paths}
    reported = {f["name"] for f in files}
    statuses = Counter(f["status"] for f in files)
    one_line = all("\n" not in f["message"] and all("\n" not in n for n in f["notes"]) for f in files)
    bare = [f for f in files if re.match(r"[A-Z]\w*(Error|Exception|Warning)\b", f["message"])]
    limit_s = args.timeout + 2 * args.timeout + args.timeout + args.timeout + 5  # load, OCR budget, a page, margin
    figures = {
        "files": len(paths),
        "bombs": sum(1 for p in paths if p.name.startswith("bomb-")),
        "mutants": sum(1 for p in paths if p.name.startswith("mutant-")),
        "types": sorted({p.suffix for p in paths}),
        "made_s": round(made_s, 1),
        "ingest_wall_s": round(result["wall_s"], 1),
        "embedded_chunks": result["embedded"],
        "statuses": dict(statuses),
        "with_notes": sum(1 for f in files if f["notes"]),
        "retry_later": sum(1 for f in files if f["retry"]),
        "failure_kinds": dict(Counter(_kind(f["message"]) for f in files if f["status"] == "failed").most_common(25)),
        "checks": {
            "every_file_reported": names <= reported,
            "one_line_each": one_line,
            "no_bare_library_error": not bare,
            "no_traceback": "Traceback" not in err,
            "exit_status": child.returncode,
            "slowest_within_limit_s": max(f["seconds"] for f in files) <= limit_s,
            "limit_s": limit_s,
        },
        "slowest": [
            {k: f[k] for k in ("name", "status", "seconds", "peak_mb", "message")} | {"seconds": round(f["seconds"], 2)}
            for f in sorted(files, key=lambda f: -f["seconds"])[:15]
        ],
        "bomb_outcomes": {
            f["name"]: f"{f['status']}: {f['message'] or '; '.join(f['notes'])}"[:200]
            for f in files
            if f["name"].startswith("bomb-")
        },
        "peak_memory_mb": {
            "largest_process": round(peak_any_mb),
            "largest_worker_after_a_file": round(max(f["peak_mb"] for f in files)),
            "worker_limit": args.memory_mb,
            "what": "ru_maxrss: the largest of the ingest process and its workers (RUSAGE_CHILDREN); workers "
            "are capped by RLIMIT_AS at worker_limit",
        },
        "limits": {"read_timeout_s": args.timeout, "read_memory_mb": args.memory_mb, "max_text_mb": 0.2},
        "stderr_tail": err[-500:],
        "cpu_shared": "2 cores shared with other sessions' work while this ran",
    }
    print(json.dumps(figures, indent=2))
    save(args.out, figures)
    if not all(v for k, v in figures["checks"].items() if k not in ("exit_status", "limit_s")):
        raise SystemExit("a check failed: see the checks above")


def _kind(message: str) -> str:
    """A failure's kind: its message without the file-specific parts in brackets."""
    return message.split(" (")[0][:80]


if __name__ == "__main__":
    main()
