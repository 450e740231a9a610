"""Measures retrieval on a question set or a BEIR folder, so every change to chunking or ranking is judged."""

from evaluation.beir import BeirResult, evaluate_beir
from evaluation.questions import QuestionResult, QuestionSetResult, evaluate_questions, load_questions

__all__ = [
    "BeirResult",
    "QuestionResult",
    "QuestionSetResult",
    "evaluate_beir",
    "evaluate_questions",
    "load_questions",
]
