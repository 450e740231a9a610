"""What a question asks for, read by rules: arithmetic and URLs in it (the tools a small model would miss), a
follow-up's stand-alone search query, and whether it gathers many items."""

from __future__ import annotations

import re

from knowledge_base.keyword_index import query_terms
from tools.calculator import CalculatorError, calculate

URL = re.compile(r"https?://[^\s<>\"')\]]+")
ARITHMETIC = re.compile(r"\d[\d,.]*\s*%\s*of\s*\d[\d,.]*|[(\d][\d\s,.()]*(?:[-+*/×÷^]|\*\*)[\d\s,.()+\-*/×÷^%]*[\d)%]")
# A question that leans on the one before it: "And the concession price?", "What about Sundays?", "Is it free?"
FOLLOW_UP = re.compile(
    r"^\s*(?:and|but|also|so|then|what about|how about|same for)\b"
    r"|\b(?:it|its|they|them|their|that one|those|these|he|she|him|her|his|there)\b",
    re.IGNORECASE,
)
SHORT = 3  # content words: "Concession price?" stands alone only in the first turn
QUERY_WORDS = 40
# Questions whose answer is gathered from many passages: counts, totals, lists of every item.
GATHERS_MANY = re.compile(
    r"\bhow many\b|\b(?:in )?total\b|\baltogether\b|\bin all\b|\bsum of\b|\bcount\b|\blist (?:all|every|each)\b"
    r"|\b(?:all|every|each) (?:the |of the )?\w+s\b|\bwhich (?:\w+ )?(?:ones|people|members)\b",
    re.IGNORECASE,
)


def urls_in(text: str) -> list[str]:
    return list(dict.fromkeys(URL.findall(text)))


def arithmetic_in(text: str) -> list[str]:
    """Expressions in a question worth handing to the calculator (numbers with an operator between them)."""
    found = []
    for match in ARITHMETIC.finditer(URL.sub(" ", text)):
        candidate = match.group(0).strip(" ,.")
        has_operator = re.search(r"\d\s*(?:[-+*/×÷^]|\*\*)\s*[\d(]", candidate) or "of" in candidate
        if has_operator:
            try:
                calculate(candidate)
            except CalculatorError:
                continue
            found.append(candidate)
    return found


def only_arithmetic(text: str, expressions: list[str]) -> bool:
    """The question is the arithmetic and nothing the knowledge base could add ("What is 12 * 7?")."""
    rest = text
    for expression in expressions:
        rest = rest.replace(expression, " ")
    return bool(expressions) and not set(query_terms(rest)) - {"calculate", "compute", "much", "equals", "equal"}


def standalone_query(question: str, earlier: list[str]) -> str:
    """The search query for a question in a conversation: a follow-up ("And the concession price?") searched
    with its own words finds nothing about what it follows up, so it borrows the earlier question's (itself
    made stand-alone first, for a third turn that leans on the second)."""
    if not earlier or not (FOLLOW_UP.search(question) or len(query_terms(question)) <= SHORT):
        return question
    before = standalone_query(earlier[-1], earlier[:-1])
    words = f"{before} {question}".split()
    return " ".join(words[-QUERY_WORDS:])


def gathers_many(question: str) -> bool:
    return bool(GATHERS_MANY.search(question))
