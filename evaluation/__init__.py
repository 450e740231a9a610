"""Measures retrieval (question sets, BEIR folders) and answers, so every change to chunking, ranking, prompts
or models is judged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbagent import lazy

if TYPE_CHECKING:
    from evaluation.beir import BeirResult, evaluate_beir
    from evaluation.questions import QuestionResult, QuestionSetResult, evaluate_questions, load_questions

__getattr__ = lazy.exports(
    __name__,
    {
        "BeirResult": "evaluation.beir",
        "evaluate_beir": "evaluation.beir",
        "QuestionResult": "evaluation.questions",
        "QuestionSetResult": "evaluation.questions",
        "evaluate_questions": "evaluation.questions",
        "load_questions": "evaluation.questions",
    },
)

__all__ = [
    "BeirResult",
    "QuestionResult",
    "QuestionSetResult",
    "evaluate_beir",
    "evaluate_questions",
    "load_questions",
]
