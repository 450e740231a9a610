"""A one-shot `kbagent ask --json`'s wall time against the answer's own `seconds`: fresh processes on the sample
knowledge base (warm disk cache), the first questions of a few categories of its question set (by default those
with short answers: fact, numeric, unanswerable). What lies between the two is the process's start and end: the
interpreter, imports, settings, the store, the models' loading and checks.

    .venv/bin/python bench/ask_wall.py [--data-dir DIR] [--per-category N] [--categories C,...] [--repeat R]
                                       [--code LABEL=PATH ...] [--name ask_wall]

`--code LABEL=PATH` runs the command on another copy of the code (PYTHONPATH=PATH, e.g. main's, exported with
`git archive main | tar -x -C PATH`); given several times, the copies take turns on each question, so a CPU
shared with other work weighs on each alike. Without it, this checkout's code. The data dir gets the sample
ingested once; one unmeasured ask first warms the disk cache (and lets the code do any first-use work, such as
joining the embedded model). Writes bench/results/NAME.json: each run's wall, `seconds` and their difference,
and their medians per copy of the code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "samples" / "harborview_questions.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/kbagent-bench-ask-wall"))
    parser.add_argument("--per-category", type=int, default=1, help="questions from each category")
    parser.add_argument(
        "--categories", default="fact,numeric,unanswerable", help="the categories asked (comma-separated)"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--code", action="append", default=[], help="LABEL=PATH: run on that copy of the code")
    parser.add_argument("--name", default="ask_wall", help="the result file's name in bench/results/")
    args = parser.parse_args()
    copies = dict(c.split("=", 1) for c in args.code) or {"this": str(ROOT)}
    questions = pick(args.per_category, args.categories.split(","))
    kbagent = Path(sys.executable).with_name("kbagent")
    first = next(iter(copies.values()))
    if not (args.data_dir / "kbagent.sqlite3").exists():
        subprocess.run(
            [kbagent, "ingest", str(ROOT / "samples" / "harborview")], env=env(args.data_dir, first), check=True
        )
    runs: dict[str, list[dict[str, float | str]]] = {label: [] for label in copies}
    for code in copies.values():  # unmeasured: warms the disk cache, does any first-use work
        ask(kbagent, questions[0], env(args.data_dir, code))
    for round_ in range(args.repeat):
        for question in questions:
            for label, code in copies.items():
                run = ask(kbagent, question, env(args.data_dir, code))
                runs[label].append(run)
                print(f"{label} r{round_} {run['wall']:6.2f} s wall, {run['seconds']:6.2f} s answer: {question[:60]}")
    figures = {
        "cpu": cpu_model(),
        "cpu_shared": "yes: other work ran on the same CPU",
        "questions": questions,
        "copies": {label: summary(r) for label, r in runs.items()},
    }
    print(json.dumps(figures["copies"], indent=2))
    save(args.name, figures)


def pick(per_category: int, categories: list[str]) -> list[str]:
    """The first `per_category` questions of each of `categories`, in file order."""
    taken: dict[str, int] = {}
    chosen = []
    for line in QUESTIONS.read_text().splitlines():
        item = json.loads(line)
        category = item.get("category", "")
        if category in categories and taken.get(category, 0) < per_category:
            taken[category] = taken.get(category, 0) + 1
            chosen.append(item["question"])
    return chosen


def env(data_dir: Path, code: str) -> dict[str, str]:
    return {**os.environ, "KBAGENT_DATA_DIR": str(data_dir), "PYTHONPATH": code}


def ask(kbagent: Path, question: str, environ: dict[str, str]) -> dict[str, float | str]:
    start = time.perf_counter()
    done = subprocess.run([kbagent, "ask", "--json", question], env=environ, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"kbagent ask failed ({done.returncode}): {done.stderr[-2000:]}")
    seconds = float(json.loads(done.stdout)["seconds"])
    return {
        "question": question,
        "wall": round(wall, 3),
        "seconds": round(seconds, 3),
        "outside": round(wall - seconds, 3),
        "load_1min": round(os.getloadavg()[0], 1),
    }


def summary(runs: list[dict[str, float | str]]) -> dict[str, object]:
    def median(key: str) -> float:
        return round(statistics.median(float(r[key]) for r in runs), 3)

    return {
        "median_wall": median("wall"),
        "median_seconds": median("seconds"),
        "median_outside": median("outside"),
        "runs": runs,
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
