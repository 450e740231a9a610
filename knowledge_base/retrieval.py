"""How candidates from the dense and keyword indexes become one ranked list: fusion, diversity, re-ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")
RRF_K = 60


@dataclass
class SearchOptions:
    mode: Mode = "hybrid"
    mmr: bool = False
    mmr_lambda: float = 0.7
    min_score: float | None = None
    candidates: int | None = None  # per index; default max(4k, 40)
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    rerank: bool = True  # only when a re-ranker is configured


@dataclass
class Candidate:
    chunk_id: str
    fused: float = 0.0
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None  # cosine similarity
    keyword_score: float | None = None  # BM25
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: Sequence[float] | None = None
    rerank_score: float | None = None


def reciprocal_rank_fusion(
    dense: Sequence[str], keyword: Sequence[str], dense_weight: float = 1.0, keyword_weight: float = 1.0
) -> dict[str, float]:
    """Weighted RRF, normalised so that a chunk ranked first by every weighted list scores 1.0."""
    total = (dense_weight if dense else 0.0) + (keyword_weight if keyword else 0.0)
    if total == 0:
        return {}
    scores: dict[str, float] = {}
    for weight, ranking in ((dense_weight, dense), (keyword_weight, keyword)):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    best = total / (RRF_K + 1)
    return {chunk_id: score / best for chunk_id, score in scores.items()}


def mmr_order(query_vector: Sequence[float], candidates: list[Candidate], k: int, lambda_mult: float) -> list[int]:
    """Indices of `candidates` chosen by maximal marginal relevance (relevance vs. novelty)."""
    import numpy as np
    from langchain_core.vectorstores.utils import maximal_marginal_relevance

    with_vectors = [i for i, c in enumerate(candidates) if c.embedding is not None]
    if not with_vectors:
        return list(range(min(k, len(candidates))))
    chosen = maximal_marginal_relevance(
        np.asarray(query_vector, dtype=np.float32),
        [list(candidates[i].embedding) for i in with_vectors],  # type: ignore[arg-type]
        lambda_mult=lambda_mult,
        k=min(k, len(with_vectors)),
    )
    return [with_vectors[i] for i in chosen]
