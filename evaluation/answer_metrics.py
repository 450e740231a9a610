"""What an answer is worth, measured without a model: correctness against a reference, grounding in the
passages the agent saw, and abstention.

Correctness uses the official SQuAD v1.1 normalisation (lower-case, strip punctuation and the articles a, an,
the, collapse spaces). Grounding (key claims, support) is `agent.grounding`, the same check the agent runs on
its answers as they stream, so what the evaluation counts is what the user was shown.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from agent.grounding import (
    Grounding,
    grounding,
    key_claims,
    names,
    rare_words,
    sentences,
    supports,
    unsupported_claims,
)

__all__ = [
    "Grounding", "abstains", "contains", "grounding", "key_claims", "keyword_recall", "names", "normalize",
    "rare_words", "sentences", "supports", "token_f1", "unsupported_claims",
]  # fmt: skip

ARTICLES = re.compile(r"\b(a|an|the)\b")
ABSTAINING = re.compile(
    r"couldn[’']t find|could not find|can(?:no|')t find|no (?:relevant )?information|does not (?:say|mention|"
    r"contain|state)|doesn[’']t (?:say|mention|contain|state)|not (?:mentioned|stated|found) in|i don[’']t know|"
    r"i do not know|unable to (?:find|answer)|no passage",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """SQuAD v1.1's answer normalisation."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(ARTICLES.sub(" ", text).split())


def contains(answer: str, golds: Sequence[str]) -> bool:
    """The normalised answer contains a normalised gold span (answers are sentences, spans are short)."""
    norm = f" {normalize(answer)} "
    return any(f" {normalize(g)} " in norm for g in golds if normalize(g))


def token_f1(answer: str, reference: str) -> float:
    """SQuAD's token F1 between the normalised answer and the reference."""
    got, want = normalize(answer).split(), normalize(reference).split()
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def keyword_recall(answer: str, keywords: Sequence[str]) -> float:
    """Share of the question's keywords the answer contains (case-insensitive)."""
    if not keywords:
        return 0.0
    lowered = answer.lower()
    return sum(k.lower() in lowered for k in keywords) / len(keywords)


def abstains(answer: str) -> bool:
    """The answer says the knowledge base does not tell (or gives nothing)."""
    return not answer.strip() or bool(ABSTAINING.search(answer))
