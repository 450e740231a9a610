"""What the answer checks withdrew, paired per question, from the reports `bench/answers.py` leaves in its work
folder: each replaced answer's first text (the one withdrawn) against the answer shown instead, both scored the
way the leaderboard scores answers. It counts the right answers withdrawn and, for the answers whose first text
left its claim out ("… is [1]."; issue 28), how many changed from wrong to right and back.

    .venv/bin/python bench/withdrawals.py [--work /tmp/kbagent-bench-answers] [--name withdrawals]

The first answer is the same with or without a check (the checks act after it), so one run gives both sides of
the pair. A first answer counted under "claim left out" may have been withdrawn for an unbacked claim too: the
figure is the most the claim-slot rule changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.citations import DANGLING, LAST_WORD  # noqa: E402
from agent.grounding import sentences  # noqa: E402
from evaluation.answers import AnswerRow, read_report  # noqa: E402
from tools.knowledge_search import CITATION_GROUP  # noqa: E402


def leaves_claim_out(answer: str) -> bool:
    """Whether a sentence of `answer` ends on a word no claim ends on, its citations aside."""
    for sentence in sentences(CITATION_GROUP.sub("", answer)):
        last = LAST_WORD.search(sentence.rstrip(" .!?\"')]*"))
        if last is not None and last.group(1).lower() in DANGLING:
            return True
    return False


def paired(rows: list[AnswerRow]) -> dict[str, object]:
    replaced = [r for r in rows if r.answerable and r.replaced and not r.error]
    slot = [r for r in replaced if leaves_claim_out(r.retracted)]
    return {
        "answerable": sum(r.answerable and not r.error for r in rows),
        "replaced": len(replaced),
        "replaced_right": sum(bool(r.retracted_contains) for r in replaced),
        "replaced_then_right": sum(bool(r.contains) for r in replaced),
        "claim_left_out": {
            "answers": len(slot),
            "wrong_to_right": sum(not r.retracted_contains and bool(r.contains) for r in slot),
            "right_to_wrong": sum(bool(r.retracted_contains) and not r.contains for r in slot),
            "examples": [{"question": r.question, "first": r.retracted, "shown": r.answer} for r in slot[:8]],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kbagent-bench-answers"))
    parser.add_argument("--name", default="withdrawals")
    args = parser.parse_args()
    figures = {}
    for name in ("sample", "squad"):
        rows = read_report(args.work / f"{name}-report.jsonl")
        if rows:
            figures[name] = paired(rows)
    print(save(args.name, figures))


if __name__ == "__main__":
    main()
