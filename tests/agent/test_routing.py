"""The rule-based routes (the fallback for models that don't call tools): which questions hold arithmetic for the
calculator, and which URLs they name for the scraper."""

from __future__ import annotations

import pytest

from agent.routing import arithmetic_in, urls_in
from tools.calculator import calculate

# question → (the expressions routed to the calculator, their values)
ARITHMETIC = {
    "what is 3 x 4": (["3 x 4"], [12]),
    "15 percent of 80?": (["15 percent of 80"], [12]),
    "What is 12 * 7?": (["12 * 7"], [84]),
    "(3+4)*2": (["(3+4)*2"], [14]),
    "how much is 15% of 80": (["15% of 80"], [12]),
    "what is 1234 / 4": (["1234 / 4"], [308.5]),
    "what is 17.5% of 2,340?": (["17.5% of 2,340"], [409.5]),
    "compute (3 + 4) * 2 please": (["(3 + 4) * 2"], [14]),
    "calculate 100-37": (["100-37"], [63]),  # a glued hyphen right after "calculate" is a subtraction
    "what is 2^10 and 7 x 6?": (["2^10", "7 x 6"], [1024, 42]),
    # not arithmetic: ranges, dates, phone numbers, fractions, ratios, sizes
    "Is the front desk open 24/7?": ([], []),
    "Who chaired the 2023-2024 season?": ([], []),
    "Call 555-1234 for bookings": ([], []),
    "classes for ages 6-12": ([], []),
    "see pages 10-20 of the manual": ([], []),
    "Is there a 1/2 price ticket?": ([], []),
    "what happened in the 2024-01-16 minutes": ([], []),
    "a 1920x1080 screen": ([], []),
    "how many 2x4 boards": ([], []),
    "the score was 50/50": ([], []),
    "what does https://example.com/calc?q=2+3 say": ([], []),  # numbers inside a URL are part of it
}


@pytest.mark.parametrize("question", list(ARITHMETIC))
def test_arithmetic_is_routed_to_the_calculator_and_nothing_else(question: str) -> None:
    expressions, values = ARITHMETIC[question]
    assert arithmetic_in(question) == expressions
    assert [calculate(e) for e in expressions] == values


URLS = {
    "Summarise https://example.com/news.": ["https://example.com/news"],
    "compare https://a.com/x, https://b.com/y": ["https://a.com/x", "https://b.com/y"],
    "compare https://a.com/x,https://b.com/y;https://c.com/z": [
        "https://a.com/x",
        "https://b.com/y",
        "https://c.com/z",
    ],
    "(see https://example.org/page)": ["https://example.org/page"],
    "what does https://en.wikipedia.org/wiki/Pier_(dock) say?": ["https://en.wikipedia.org/wiki/Pier_(dock)"],
    "read https://example.com/search?q=1&p=2!": ["https://example.com/search?q=1&p=2"],
    'is "https://example.com/a" up?': ["https://example.com/a"],
    "https://example.com/a and https://example.com/a again": ["https://example.com/a"],
    "HTTPS://EXAMPLE.COM/Upper...": ["HTTPS://EXAMPLE.COM/Upper"],
    "a bare https://, is no URL, nor is example.com": [],
}


@pytest.mark.parametrize("text", list(URLS))
def test_urls_lose_closing_punctuation_and_lists_split(text: str) -> None:
    assert urls_in(text) == URLS[text]


def test_the_runner_routes_with_these_functions() -> None:
    from agent import local_loop as runner
    from agent import routing

    assert runner.arithmetic_in is routing.arithmetic_in and runner.urls_in is routing.urls_in
