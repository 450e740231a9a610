"""Where an evaluation figure turns green, amber or red: one table for the answers leaderboard and one pair of lines
for retrieval, so the CLI and the app colour the same run the same way."""

from __future__ import annotations

from typing import Literal

Grade = Literal["good", "fair", "poor"]

# Green and amber lines for each leaderboard figure (red past amber).
THRESHOLDS: dict[str, tuple[float, float, bool]] = {  # name: (green, amber, higher is better)
    "contains": (0.8, 0.5, True),
    "keyword_recall": (0.8, 0.5, True),
    "f1": (0.5, 0.3, True),
    "cited": (1.0, 0.8, True),
    "citation_support": (0.95, 0.8, True),
    "unsupported_answers": (0.05, 0.2, False),
    "abstained_unanswerable": (0.9, 0.6, True),
    "wrongly_abstained": (0.05, 0.15, False),
    "first_token_p50_s": (4.0, 8.0, False),
    "seconds_p50": (10.0, 20.0, False),
}

# MRR, nDCG and coverage of a retrieval run: green at or above the first line, amber at or above the second.
RETRIEVAL_LINES = (0.8, 0.5)

# The figures a leaderboard shows, in order (`evaluation.answers.summarize` names them).
FIGURES = ["questions", "errors", "contains", "keyword_recall", "f1", "cited", "citation_support",
           "unsupported_answers", "abstained_unanswerable", "wrongly_abstained", "first_token_p50_s",
           "first_token_p95_s", "seconds_p50", "seconds_p95", "decode_tokens_per_s", "completion_tokens",
           "usd"]  # fmt: skip


def grade(name: str, value: float | None) -> Grade | None:
    """Good (green), fair (amber) or poor (red); None for a figure without lines (counts, cost) or without a value."""
    if value is None or name not in THRESHOLDS:
        return None
    green, amber, higher = THRESHOLDS[name]
    if value >= green if higher else value <= green:
        return "good"
    if value >= amber if higher else value <= amber:
        return "fair"
    return "poor"


def retrieval_grade(value: float) -> Grade:
    """Good (green), fair (amber) or poor (red) for a retrieval figure between 0 and 1 (`RETRIEVAL_LINES`)."""
    green, amber = RETRIEVAL_LINES
    return "good" if value >= green else "fair" if value >= amber else "poor"
