"""The sample question set fits the sample knowledge base: every keyword of an answerable question is in the
documents as the app reads them, two-step questions name their answer, unanswerable ones carry nothing to find."""

from __future__ import annotations

from functools import cache

from evaluation import load_questions
from evaluation.questions import Question
from ingest.loaders import load
from tests.support.paths import SAMPLES

QUESTIONS = SAMPLES.parent / "harborview_questions.jsonl"


@cache
def _questions() -> tuple[Question, ...]:
    return tuple(load_questions(QUESTIONS))


@cache
def _document_texts() -> tuple[str, ...]:
    """Each sample document's text, lower-cased, as `ingest.loaders.load` reads it (PDF, Word, HTML, CSV too)."""
    paths = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    return tuple("\n".join(d.page_content for d in load(p, p.read_bytes())).lower() for p in paths)


def test_the_set_has_each_kind() -> None:
    categories = [q.category for q in _questions()]
    assert categories.count("two-step") >= 10
    assert categories.count("unanswerable") >= 10
    assert len(_document_texts()) >= 20


def test_every_answerable_keyword_is_in_a_sample_document() -> None:
    texts = _document_texts()
    missing = [
        (q.question, keyword)
        for q in _questions()
        if q.answerable
        for keyword in q.keywords
        if not any(keyword.lower() in text for text in texts)
    ]
    assert not missing


def test_two_step_questions_name_their_answer() -> None:
    for q in (q for q in _questions() if q.category == "two-step"):
        assert q.answerable, q.question
        assert 1 <= len(q.keywords) <= 3, q.question
        assert q.reference_answer.strip(), q.question


def test_unanswerable_questions_carry_nothing_to_find() -> None:
    unanswerable = [q for q in _questions() if q.category == "unanswerable"]
    assert unanswerable
    for q in unanswerable:
        assert q.answerable is False, q.question
        assert q.keywords == [], q.question
    # and the flag is used only for them
    assert all(q.answerable for q in _questions() if q.category != "unanswerable")
