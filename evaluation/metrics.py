"""Ranking metrics with binary relevance. Lists are in rank order; True means relevant."""

from __future__ import annotations

import math
from collections.abc import Sequence


def reciprocal_rank(relevant: Sequence[bool], k: int | None = None) -> float:
    for rank, hit in enumerate(relevant[:k] if k else relevant, start=1):
        if hit:
            return 1.0 / rank
    return 0.0


def dcg(relevant: Sequence[bool], k: int) -> float:
    return sum(1.0 / math.log2(rank + 1) for rank, hit in enumerate(relevant[:k], start=1) if hit)


def ndcg(relevant: Sequence[bool], k: int, total_relevant: int | None = None) -> float:
    """nDCG@k. The ideal ranking puts `total_relevant` hits first; without it, the hits that were retrieved
    (the usual choice when relevance is judged by keyword and the corpus-wide count is unknown)."""
    ideal_hits = sum(relevant[:k]) if total_relevant is None else total_relevant
    ideal = dcg([True] * min(ideal_hits, k), k)
    return dcg(relevant, k) / ideal if ideal else 0.0


def recall(relevant: Sequence[bool], k: int, total_relevant: int) -> float:
    return sum(relevant[:k]) / total_relevant if total_relevant else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
