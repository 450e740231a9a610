"""Answers measured the way users read them: each question asked through the agent exactly as `kbagent ask`
asks it (a fresh thread each), scored for correctness, grounding, abstention, speed and cost, per model.

A run appends one JSON line per (model, question) to its report as it goes, so a stopped run resumes where it
stopped: questions already in the report for that model are not asked again.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.events import Done, Error, Event, JsonValue, Sources, Token
from agent.grounding import CITATION_GROUP
from evaluation.answer_metrics import abstains, contains, grounding, keyword_recall, token_f1
from evaluation.judge import CRITERIA, Grade, Judge

Stream = Callable[[str], Iterable[Event]]  # question → the agent's events, in a fresh thread
Price = Callable[[str, int | None, int | None], float | None]  # (model, prompt, completion tokens) → USD


@dataclass
class _Heard:
    """What one answer's events said."""

    answer: str = ""
    passages: dict[int, str] = field(default_factory=dict)  # every numbered passage the agent saw
    cited: list[int] = field(default_factory=list)
    first_token_s: float | None = None
    pieces: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    replaced: bool = False  # the agent replaced the model's answer: no source backed its claims
    retracted: str = ""  # the model's answer it replaced
    error: str = ""


@dataclass(frozen=True)
class AnswerQuestion:
    id: str
    question: str
    category: str = "general"
    keywords: tuple[str, ...] = ()
    reference: str = ""
    golds: tuple[str, ...] = ()  # reference spans (SQuAD); empty for question sets
    answerable: bool = True


@dataclass
class AnswerRow:
    """One model's answer to one question, with every per-question figure; a line of the report."""

    model: str
    id: str
    question: str
    category: str
    answerable: bool
    answer: str = ""
    error: str = ""
    cited_passages: list[int] = field(default_factory=list)
    contains: bool | None = None
    f1: float | None = None
    keyword_recall: float | None = None
    abstained: bool = False
    cited: bool = False
    citations: int = 0
    supported_citations: int = 0
    unsupported: list[str] = field(default_factory=list)
    replaced: bool = False  # the agent's check replaced the model's answer (claims no source backs)
    retracted: str = ""  # the answer it replaced, and whether that one held the expected answer: a right answer
    retracted_contains: bool | None = None  # withdrawn costs more than a wrong one kept and marked
    first_token_s: float | None = None
    seconds: float = 0.0
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    usd: float | None = None
    judge: Grade | None = None


def _listen(events: Iterable[Event]) -> _Heard:
    heard = _Heard()
    start = time.perf_counter()
    for event in events:
        if isinstance(event, Token) and event.text:
            if heard.first_token_s is None:
                heard.first_token_s = time.perf_counter() - start
            heard.pieces += 1
        elif isinstance(event, Sources):
            heard.passages = {p.n: p.text for p in [*event.cited, *event.retrieved]}
            heard.cited = sorted(p.n for p in event.cited)
        elif isinstance(event, Done):
            heard.answer, heard.prompt_tokens, heard.replaced = event.answer, event.prompt_tokens, bool(event.retracted)
            heard.retracted = event.retracted
            heard.completion_tokens = event.completion_tokens
        elif isinstance(event, Error):
            heard.error = event.message
    return heard


def answer_row(
    model: str, question: AnswerQuestion, stream: Stream, judge: Judge | None = None, price: Price | None = None
) -> AnswerRow:
    """Ask one question and score the answer. Completion tokens are the model's own count where it reports
    one, else the streamed pieces (one token each from llama.cpp)."""
    start = time.perf_counter()
    row = AnswerRow(model, question.id, question.question, question.category, question.answerable)
    try:
        heard = _listen(stream(question.question))
    except Exception as exc:  # a model that fails is one row's error, not the run's end
        heard = _Heard(error=f"{type(exc).__name__}: {exc}")
    row.seconds, row.first_token_s = time.perf_counter() - start, heard.first_token_s
    row.completion_tokens = heard.completion_tokens or heard.pieces
    row.prompt_tokens = heard.prompt_tokens
    row.usd = price(model, heard.prompt_tokens, heard.completion_tokens) if price else None
    answer = row.answer = heard.answer
    row.error, row.cited_passages, row.replaced = heard.error, heard.cited, heard.replaced
    if heard.error:
        return row
    found = grounding(answer, heard.passages, question.question)
    row.abstained = abstains(answer)
    row.cited, row.citations, row.supported_citations = found.cited, found.citations, found.supported_citations
    row.unsupported = list(found.unsupported)
    words = CITATION_GROUP.sub("", answer)  # "[3]" is where the answer comes from, not what it says
    if question.golds:
        row.f1 = max(token_f1(words, g) for g in question.golds)
    elif question.reference:
        row.f1 = token_f1(words, question.reference)
    if question.keywords:
        row.keyword_recall = keyword_recall(answer, question.keywords)
    row.contains = _holds_answer(answer, question)
    row.retracted = heard.retracted
    row.retracted_contains = _holds_answer(heard.retracted, question) if heard.retracted else None
    if judge is not None and question.answerable:
        row.judge = judge.grade(question.question, question.reference or "; ".join(question.golds), answer)
    return row


def _holds_answer(answer: str, question: AnswerQuestion) -> bool | None:
    """Whether `answer` holds one of the question's gold spans, else all its keywords; None with neither."""
    words = CITATION_GROUP.sub("", answer)  # "[3]" is where the answer comes from, not what it says
    if question.golds:
        return contains(words, question.golds)
    return keyword_recall(answer, question.keywords) == 1.0 if question.keywords else None


def read_report(path: Path | None) -> list[AnswerRow]:
    """The rows a previous run wrote (a half-written last line from a killed run is ignored)."""
    if path is None or not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(AnswerRow(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return rows


def run_answers(
    models: Mapping[str, Stream],
    questions: list[AnswerQuestion],
    report: Path | None = None,
    judge: Judge | None = None,
    on_row: Callable[[AnswerRow, int, int], None] | None = None,
    price: Price | None = None,
) -> list[AnswerRow]:
    """Every model answers every question (in order); rows already in `report` are kept, not asked again."""
    rows = read_report(report)
    keys = {(m, q.id) for m in models for q in questions}
    done = {(r.model, r.id) for r in rows}
    finished = len(done & keys)
    for model, stream in models.items():
        for question in questions:
            if (model, question.id) in done:
                continue
            row = answer_row(model, question, stream, judge, price)
            rows.append(row)
            done.add((model, question.id))
            if report is not None:
                with report.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
            finished += 1
            if on_row is not None:
                on_row(row, finished, len(keys))
    return [r for r in rows if (r.model, r.id) in keys]


def _share(values: list[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 4) if known else None


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.fmean(known), 4) if known else None


def _score(grade: Grade, criterion: str) -> float | None:
    value = grade.get(criterion)
    return value if isinstance(value, int | float) else None


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


def summarize(rows: list[AnswerRow]) -> dict[str, JsonValue]:
    """Figures for a set of rows (one model's, or one category of it)."""
    answered = [r for r in rows if not r.error]
    answerable = [r for r in answered if r.answerable]
    unanswerable = [r for r in answered if not r.answerable]
    given = [r for r in answerable if not r.abstained]
    judged = [r.judge for r in answered if r.judge and not r.judge.get("error")]
    decode = [r.completion_tokens / (r.seconds - r.first_token_s) for r in answered
              if r.first_token_s is not None and r.seconds > r.first_token_s]  # fmt: skip
    costs = [r.usd for r in answered if r.usd is not None]
    first_tokens = [r.first_token_s for r in answered if r.first_token_s is not None]
    return {
        "questions": len(rows),
        "errors": len(rows) - len(answered),
        "contains": _share([r.contains for r in answerable]),
        "f1": _mean([r.f1 for r in answerable]),
        "keyword_recall": _mean([r.keyword_recall for r in answerable]),
        "cited": _share([r.cited for r in given]),
        "citation_support": round(sum(r.supported_citations for r in given) / c, 4)
        if (c := sum(r.citations for r in given))
        else None,
        "unsupported_answers": _share([bool(r.unsupported) for r in given]),
        "replaced_answers": _share([r.replaced for r in answered]),
        "abstained_unanswerable": _share([r.abstained for r in unanswerable]),
        "wrongly_abstained": _share([r.abstained for r in answerable]),
        "judge": {k: _mean([_score(j, k) for j in judged]) for k in CRITERIA} if judged else None,
        "first_token_p50_s": _percentile(first_tokens, 0.5),
        "first_token_p95_s": _percentile(first_tokens, 0.95),
        "seconds_p50": _percentile([r.seconds for r in answered], 0.5),
        "seconds_p95": _percentile([r.seconds for r in answered], 0.95),
        "decode_tokens_per_s": _mean(list(decode)),
        "completion_tokens": sum(r.completion_tokens for r in answered),
        "usd": round(sum(costs), 6) if costs else None,
    }


def leaderboard(rows: list[AnswerRow]) -> dict[str, JsonValue]:
    """Per model: overall figures and per-category figures."""
    board: dict[str, JsonValue] = {}
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        categories = {c: summarize([r for r in mine if r.category == c]) for c in sorted({r.category for r in mine})}
        board[model] = {"overall": summarize(mine), "categories": categories}
    return board
