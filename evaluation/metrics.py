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


def ndcg(relevant: Sequence[bool], k: int, total_relevant: int) -> float:
    """nDCG@k with the standard ideal: all `total_relevant` items ranked first. (An ideal made of only the
    hits that were retrieved would score a list that misses most relevant items as perfect.)"""
    ideal = dcg([True] * min(total_relevant, k), k)
    return dcg(relevant, k) / ideal if ideal else 0.0


def recall(relevant: Sequence[bool], k: int, total_relevant: int) -> float:
    return sum(relevant[:k]) / total_relevant if total_relevant else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
