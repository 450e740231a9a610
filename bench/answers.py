"""The embedded default and the 0.5B fallback side by side, through `kbagent eval --answers`: on the sample
question set (every question: facts, two-step and unanswerable ones) over the sample knowledge base, and on a
fixed 100-question sample of SQuAD v1.1 dev (the first 3 questions of each article, in file order, the first
100 of those), whose 2,067 paragraphs get a store of their own.

    .venv/bin/python bench/answers.py [--squad ../shared/bench/squad11_dev] [--skip-squad] [--work DIR]
                                      [--embedded-only] [--name answers] [--category C] [--local-tool-steps N]

Each set's per-question report goes to DIR (default /tmp/kbagent-bench-answers): a stopped run resumes there.
Prints the leaderboards and writes bench/results/NAME.json (answers.json; answers_before_17.json holds the
figures from before the answer checks, the local tool loop and the table lines). `--category two-step
--local-tool-steps 2 --skip-squad` measures the local tool loop on the questions it is meant for
(answers_tool_steps.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kbagent import environment  # noqa: E402

environment.prepare()

from kbagent.components import Components  # noqa: E402
from kbagent.evaluation_view import run_answer_set  # noqa: E402
from kbagent.settings import Settings  # noqa: E402
from tests.support.small_model import SMALL  # noqa: E402  (the 0.5B GGUF, joined from its PyPI parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "bench" / "squad11_dev")
    parser.add_argument("--skip-squad", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/kbagent-bench-answers"))
    parser.add_argument("--embedded-only", action="store_true", help="leave out the 0.5B fallback")
    parser.add_argument("--name", default="answers", help="the result file's name in bench/results/")
    parser.add_argument("--category", help="only the sample set's questions of this category")
    parser.add_argument("--local-tool-steps", type=int, default=0, help="KBAGENT_LOCAL_TOOL_STEPS for the run")
    args = parser.parse_args()
    models_dir = Path(os.environ.get("KBAGENT_MODELS_DIR", str(ROOT / "data" / "models")))
    settings = Settings(
        data_dir=args.work / "sample", models_dir=models_dir, local_tool_steps=args.local_tool_steps, _env_file=None
    )
    models: list[str | None] = [None] if args.embedded_only else [None, f"gguf:{SMALL.ensure(models_dir)}"]
    results = {}
    with Components(settings) as parts:
        parts.ingest([ROOT / "samples" / "harborview"])
    sample_set = ROOT / "samples" / "harborview_questions.jsonl"
    if args.category:
        sample_set = one_category(sample_set, args.category, args.work)
    report = args.work / "sample-report.jsonl"
    results["sample"] = run_answer_set(settings, sample_set, models, None, (None, None), report, None, False)
    if not args.skip_squad:
        squad_settings = settings.override(data_dir=args.work / "squad")
        report = args.work / "squad-report.jsonl"
        results["squad100"] = run_answer_set(
            squad_settings, args.squad, models, None, (3, 100), report, args.work / "squad-store", False
        )
    save(args.name, results)


def one_category(path: Path, category: str, work: Path) -> Path:
    """The question set's questions of one category, as a set of their own under `work`."""
    lines = [line for line in path.read_text().splitlines() if json.loads(line).get("category") == category]
    if not lines:
        raise SystemExit(f"no question of category {category!r} in {path}")
    work.mkdir(parents=True, exist_ok=True)
    subset = work / f"questions-{category}.jsonl"
    subset.write_text("\n".join(lines) + "\n")
    return subset


if __name__ == "__main__":
    main()
