"""Rule-based routing for models that don't call tools: the URLs to scrape and the arithmetic to calculate that a
question holds, a follow-up's stand-alone search query, and whether a question gathers many items. A wrong
route costs a tool call and a confusing result in the prompt, so the rules lean to "no":
a hyphen or slash glued between numbers ("24/7", "2023-2024", "555-1234", "ages 6-12", "1/2 price") is a range,
a date, a phone number or a fraction, and counts as arithmetic only right after "what is", "calculate" and the like.
"""

from __future__ import annotations

import re

from kbagent.text import RANKING_STOPWORDS
from knowledge_base.keyword_index import TOKEN, query_terms
from tools.calculator import CalculatorError, calculate

URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_NEXT_URL = re.compile(r"[,;](?=https?://)", re.IGNORECASE)  # "https://a.com/x,https://b.com/y": two URLs
_OPENERS = {")": "(", "]": "[", "}": "{"}
_TRAILING = ".,;:!?…"

_NUMBER = r"\d[\d,.]*"
_PERCENT_OF = rf"{_NUMBER}\s*(?:%|percent|per\s+cent)\s*of\s*{_NUMBER}"
_OPERATOR = r"(?:\*\*|[-+*/×÷^x])"
ARITHMETIC = re.compile(
    rf"{_PERCENT_OF}|[(\d][\d\s,.()]*{_OPERATOR}[\d\s,.()+\-*/×÷^%x]*[\d)%]",
    re.IGNORECASE,
)
_HAS_OPERATOR = re.compile(rf"[\d)]\s*{_OPERATOR}\s*[\d(]|\bof\b", re.IGNORECASE)
# Operators that mean arithmetic wherever they stand: + * × ÷ ^, "N% of", and - / x with spaces around them.
_STRONG = re.compile(r"[+*×÷^]|\bof\b|(?<=\s)[-/x](?=\s)", re.IGNORECASE)
_ASKS_TO_COMPUTE = re.compile(
    r"(?:\bwhat\s+is|\bwhat's|\bhow\s+much\s+is|\bcalculate|\bcompute|\bevaluate|\bsolve)\s*:?\s*$", re.IGNORECASE
)

# A question that leans on the one before it: "And the concession price?", "What about Sundays?", "Is it free?"
FOLLOW_UP = re.compile(
    r"^\s*(?:and|but|also|so|then|what about|how about|same for)\b"
    r"|\b(?:it|its|they|them|their|that one|those|these|he|she|him|her|his|there)\b",
    re.IGNORECASE,
)
SHORT = 3  # content words: "Concession price?" stands alone only in the first turn
QUERY_WORDS = 40
# Questions whose answer is gathered from many passages: every item of a kind, a total over them. Not "how
# many" nor "total" alone: "How many links does a chain need?" and "the total revenue" are one fact in one place
# (widening those measurably hurt on the sample set: the model lost the one fact among more passages).
GATHERS_MANY = re.compile(
    r"\blist (?:all|every|each)\b|\b(?:all|every|each) (?:of )?(?:the )?\w+s\b|\bin total\b|\baltogether\b"
    r"|\bcombined\b|\bhow many (?:different|distinct|separate)\b",
    re.IGNORECASE,
)


def urls_in(text: str) -> list[str]:
    """The http(s) URLs in `text`, in order, once each: without the sentence's closing punctuation, and a
    comma-separated list of URLs split into its URLs."""
    found: dict[str, None] = {}
    for match in URL.finditer(text):
        for piece in _NEXT_URL.split(match.group(0)):
            url = _trim(piece)
            if re.match(r"https?://[^/?#]+", url, re.IGNORECASE):
                found.setdefault(url)
    return list(found)


def _trim(url: str) -> str:
    """Drops trailing punctuation, and closing brackets the URL never opened ("(see https://x.org/a)")."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _OPENERS and url.count(_OPENERS[last]) < url.count(last)):
            url = url[:-1]
        else:
            break
    return url


def arithmetic_in(text: str) -> list[str]:
    """Expressions in a question worth handing to the calculator: numbers with an operator between them that the
    calculator evaluates, where the operator means arithmetic (see the module's note)."""
    found = []
    without_urls = URL.sub(lambda m: " " * len(m.group(0)), text)
    for match in ARITHMETIC.finditer(without_urls):
        candidate = match.group(0).strip(" ,.")
        if not _HAS_OPERATOR.search(candidate):
            continue
        if not _STRONG.search(candidate) and not _ASKS_TO_COMPUTE.search(without_urls[: match.start()]):
            continue
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
    words = {w.lower() for w in TOKEN.findall(rest)} - RANKING_STOPWORDS
    words -= {"calculate", "compute", "much", "equals", "equal"}
    return bool(expressions) and not words


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
