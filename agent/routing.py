"""Rule-based routing for models that don't call tools: the URLs to scrape and the arithmetic to calculate that a
question holds. A wrong route costs a tool call and a confusing result in the prompt, so the rules lean to "no":
a hyphen or slash glued between numbers ("24/7", "2023-2024", "555-1234", "ages 6-12", "1/2 price") is a range,
a date, a phone number or a fraction, and counts as arithmetic only right after "what is", "calculate" and the like.
"""

from __future__ import annotations

import re

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
