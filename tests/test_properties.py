"""Property-based tests: the splitter never loses or invents text, the calculator never escapes arithmetic."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document

from ingest.chunking import Chunker, ChunkingConfig
from tools.calculator import CalculatorError, calculate

words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
paragraphs = st.lists(st.lists(words, min_size=1, max_size=40).map(" ".join), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paragraphs, st.integers(min_value=100, max_value=600), st.integers(min_value=0, max_value=90))
def test_chunks_cover_the_text_within_size(paras: list[str], size: int, overlap: int) -> None:
    text = "\n\n".join(paras)
    chunker = Chunker(ChunkingConfig(size, min(overlap, size - 1)))
    chunks = chunker.split([Document(text, metadata={"format": "text"})], "T")
    header = "T\n\n"
    bodies = [c.page_content.removeprefix(header) for c in chunks]
    assert all(c.page_content.startswith(header) for c in chunks)
    assert all(len(b) <= size for b in bodies)
    # every non-space character of the input appears in some chunk, in order, and nothing else is added
    joined = "".join("".join(b.split()) for b in bodies)
    original = "".join(text.split())
    assert set(joined) <= set(original)
    position = 0
    for char in original:
        found = joined.find(char, position)
        assert found >= 0
        position = found + 1


@settings(max_examples=150, deadline=None)
@given(paragraphs)
@example(["# 0"])  # a heading with nothing under it, once lost
@example(["# 0", "text"])
def test_markdown_sections_keep_their_text(paras: list[str]) -> None:
    text = "\n\n".join(f"## Section {i}\n\n{p}" for i, p in enumerate(paras))
    chunks = Chunker(ChunkingConfig(400, 40)).split([Document(text, metadata={"format": "markdown"})], "Doc")
    kept = " ".join(c.page_content for c in chunks)  # a heading's words may live in the context headers
    for p in paras:
        for word in p.split():
            if not word.startswith("#"):
                assert word in kept


numbers = st.one_of(st.integers(min_value=-(10**6), max_value=10**6), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(numbers, numbers, st.sampled_from(["+", "-", "*"]))
def test_calculator_matches_python_arithmetic(a: float, b: float, op: str) -> None:
    expected = {"+": a + b, "-": a - b, "*": a * b}[op]
    got = calculate(f"({a!r}) {op} ({b!r})")
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_calculator_never_runs_anything_else(expression: str) -> None:
    try:
        result = calculate(expression)
    except CalculatorError:
        return
    assert isinstance(result, int | float)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+-*/()%^., ", max_size=60))
def test_calculator_on_arithmetic_soup(expression: str) -> None:
    try:
        result = calculate(expression)
    except CalculatorError:
        return
    assert isinstance(result, int | float) and not math.isnan(result)
