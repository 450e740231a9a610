"""A question set in JSON lines, evaluated against the current store by keyword relevance.

Each line: {"question": str, "keywords": [str], "reference_answer": str, "category": str}. A retrieved
chunk is relevant to a keyword when its text contains it (case-insensitive). Per keyword: reciprocal rank
and nDCG@k, where a keyword's one relevant item is the first chunk that contains it (the ideal ranks it first,
so nDCG is 1/log2(1 + rank)); per question: their mean over keywords, and keyword coverage (share found in the
top k).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationError, model_validator

from evaluation.metrics import mean, ndcg, reciprocal_rank
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions

if TYPE_CHECKING:
    from agent.events import JsonValue


class Question(BaseModel):
    question: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    reference_answer: str = ""
    category: str = "general"
    answerable: bool = True  # false: the knowledge base cannot answer it (the answers evaluation checks abstention)

    @model_validator(mode="after")
    def _keywords_when_answerable(self) -> Question:
        if self.answerable and not self.keywords:
            raise ValueError("an answerable question needs keywords")
        return self


@dataclass
class QuestionResult:
    question: str
    category: str
    keywords: list[str]
    mrr: float
    ndcg: float
    coverage: float
    keyword_ranks: dict[str, int | None]
    retrieved: list[dict[str, object]] = field(default_factory=list)  # text, source, score: for reports


@dataclass
class QuestionSetResult:
    k: int
    mode: str
    results: list[QuestionResult]

    def summary(self) -> dict[str, JsonValue]:
        categories: dict[str, list[QuestionResult]] = {}
        for r in self.results:
            categories.setdefault(r.category, []).append(r)
        return {
            "k": self.k,
            "mode": self.mode,
            "overall": _aggregate(self.results),
            "categories": {name: _aggregate(rs) for name, rs in sorted(categories.items())},
        }


def _aggregate(results: list[QuestionResult]) -> dict[str, float]:
    return {
        "questions": len(results),
        "mrr": round(mean([r.mrr for r in results]), 4),
        "ndcg": round(mean([r.ndcg for r in results]), 4),
        "coverage": round(mean([r.coverage for r in results]), 4),
    }


def load_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(Question.model_validate_json(line))
        except (ValidationError, json.JSONDecodeError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ValueError(f"{path}:{number}: not a question object ({first})") from exc
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


def score_question(question: Question, texts: list[str], k: int) -> tuple[float, float, float, dict[str, int | None]]:
    lowered = [t.lower() for t in texts[:k]]
    rrs, ndcgs, ranks = [], [], {}
    for keyword in question.keywords:
        hits = [keyword.lower() in t for t in lowered]
        first = [n == hits.index(True) for n in range(len(hits))] if any(hits) else hits
        rrs.append(reciprocal_rank(hits))
        ndcgs.append(ndcg(first, k, total_relevant=1))
        ranks[keyword] = hits.index(True) + 1 if any(hits) else None
    coverage = sum(1 for r in ranks.values() if r is not None) / len(ranks)
    return mean(rrs), mean(ndcgs), coverage, ranks


def evaluate_questions(
    kb: KnowledgeBase,
    questions: list[Question],
    k: int = 10,
    options: SearchOptions | None = None,
    on_question: Callable[[QuestionResult], None] | None = None,
) -> QuestionSetResult:
    """Retrieval scores per question; questions the knowledge base cannot answer have nothing to find and are
    left out (the answers evaluation checks that they are abstained from)."""
    options = options or kb.default_options()
    results = []
    for q in questions:
        if not q.answerable:
            continue
        docs = kb.search(q.question, k=k, options=options)
        mrr, nd, coverage, ranks = score_question(q, [d.page_content for d in docs], k)
        retrieved: list[dict[str, object]] = [
            {"text": d.page_content, "source": d.metadata.get("source"), "score": d.metadata.get("score")} for d in docs
        ]
        result = QuestionResult(q.question, q.category, q.keywords, mrr, nd, coverage, ranks, retrieved)
        results.append(result)
        if on_question:
            on_question(result)
    return QuestionSetResult(k, options.mode, results)


def report_lines(result: QuestionSetResult) -> list[str]:
    return [json.dumps(asdict(r), ensure_ascii=False) for r in result.results]
