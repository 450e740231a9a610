"""The Evaluation tab's text: the retrieval table and its rows, the answers leaderboard and each answer's details,
coloured by the lines of `evaluation.thresholds` (the CLI's too). Everything from a model or a document is
escaped: shown as text, never rendered."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.answers import AnswerRow
from evaluation.judge import CRITERIA
from evaluation.questions import QuestionResult
from evaluation.thresholds import FIGURES, RETRIEVAL_LINES, grade, retrieval_grade
from tools.knowledge_search import Passage
from ui.markup import middle_cut, plain_text, shown

GRADE_COLOUR = {"good": "#15803d", "fair": "#b45309", "poor": "#b91c1c"}
MAX_PASSAGE_CHARS = 700
EVAL_HEADERS = ["question", "category", "MRR", "nDCG", "coverage", "missing keywords", "retrieved chunks"]
EVAL_WIDTHS = ["27%", "10%", "7%", "7%", "8%", "12%", "29%"]


def colour(value: float) -> str:
    return GRADE_COLOUR[retrieval_grade(value)]


def metric_cell(value: float) -> str:
    name = retrieval_grade(value)
    return f'<td class="metric {name}" style="color:{colour(value)};font-weight:600">{value:.3f}</td>'


def eval_summary_html(summary: Mapping[str, Any]) -> str:
    """MRR, nDCG and coverage overall and per category, green, amber or red (`RETRIEVAL_LINES`)."""
    k = summary["k"]
    head = f"<tr><th>category</th><th>questions</th><th>MRR</th><th>nDCG@{k}</th><th>coverage</th></tr>"
    rows = []
    for name, row in [*summary["categories"].items(), ("overall", summary["overall"])]:
        style = ' style="font-weight:700;border-top:2px solid #888"' if name == "overall" else ""
        rows.append(
            f"<tr{style}><td>{html.escape(name)}</td><td>{row['questions']}</td>"
            f"{metric_cell(row['mrr'])}{metric_cell(row['ndcg'])}{metric_cell(row['coverage'])}</tr>"
        )
    green, amber = RETRIEVAL_LINES
    caption = f"Retrieval ({html.escape(summary['mode'])}, top {k}) — green ≥ {green}, amber ≥ {amber}, red below"
    return f'<table class="kb-eval"><caption>{caption}</caption>{head}{"".join(rows)}</table>'


def eval_rows(results: Sequence[QuestionResult], names: Mapping[str, str] | None = None) -> list[list[str | float]]:
    """One row per question; the first five retrieved chunks by rank and source only, so a row stays a few lines
    high."""
    rows: list[list[str | float]] = []
    for r in results:
        missing = [k for k, rank in r.keyword_ranks.items() if rank is None]
        names_shown = [middle_cut(shown(str(c.get("source") or ""), names or {}), 32) for c in r.retrieved]
        retrieved = " · ".join(f"{n}. {name}" for n, name in enumerate(names_shown[:5], start=1))
        retrieved += f" · (+{len(names_shown) - 5} more)" if len(names_shown) > 5 else ""
        rows.append(
            [
                r.question,
                r.category,
                round(r.mrr, 3),
                round(r.ndcg, 3),
                round(r.coverage, 3),
                ", ".join(missing),
                retrieved,
            ]
        )
    return rows


# ---- the answers evaluation ---------------------------------------------------------------------------------


def figure_cell(name: str, value: float | None) -> str:
    """One leaderboard figure, green, amber or red by `evaluation.thresholds` (the CLI's lines)."""
    shade = grade(name, value)
    text = "–" if value is None else f"{value:.3g}" if isinstance(value, float) else html.escape(str(value))
    if shade is None:
        return f'<td class="figure">{text}</td>'
    return f'<td class="metric {shade}" style="color:{GRADE_COLOUR[shade]};font-weight:600">{text}</td>'


def _figure_rows(named: list[tuple[list[str], dict[str, Any]]], judged: bool) -> str:
    rows = []
    for labels, figures in named:
        cells = "".join(f"<td>{html.escape(label)}</td>" for label in labels)
        cells += "".join(figure_cell(name, figures[name]) for name in FIGURES)
        if judged:
            scores = figures.get("judge") or {}
            cells += "".join(figure_cell(f"judge_{c}", scores.get(c)) for c in CRITERIA)
        rows.append(f"<tr>{cells}</tr>")
    return "".join(rows)


def answers_leaderboard_html(board: Mapping[str, Any]) -> str:
    """A row per model with every figure (the CLI's, coloured by its lines), then the same per category."""
    judged = any(entry["overall"].get("judge") for entry in board.values())
    names = [*FIGURES, *(f"judge {c} (1-5)" for c in CRITERIA if judged)]
    head = "".join(f"<th>{html.escape(n.replace('_', ' '))}</th>" for n in names)
    overall = _figure_rows([([model], entry["overall"]) for model, entry in board.items()], judged)
    by_category = _figure_rows(
        [([model, c], figures) for model, entry in board.items() for c, figures in entry["categories"].items()],
        judged,
    )
    caption = "Answers — green, amber or red by the same lines as <code>kbagent eval --answers</code>"
    return (
        f'<div class="kb-answers" style="overflow-x:auto"><table class="kb-leaderboard"><caption>{caption}</caption>'
        f"<tr><th>model</th>{head}</tr>{overall}</table>"
        f'<details class="kb-by-category"><summary>By category</summary><table>'
        f"<tr><th>model</th><th>category</th>{head}</tr>{by_category}</table></details></div>"
    )


def answer_flags(row: AnswerRow) -> list[str]:
    """What one answer got right and wrong, one short phrase each (✔ good, ✘ bad)."""
    if row.error:
        return [f"✘ failed: {row.error}"]
    flags = []
    if row.contains is not None:
        flags.append("✔ contains the answer" if row.contains else "✘ misses the answer")
    if not row.answerable:
        flags.append("✔ abstained (unanswerable)" if row.abstained else "✘ answered an unanswerable question")
    elif row.abstained:
        flags.append("✘ abstained")
    if not row.abstained:
        flags.append(f"✔ cites {row.cited_passages}" if row.cited else "✘ cites nothing")
    if row.citations:
        flags.append(f"{row.supported_citations}/{row.citations} citations supported")
    if row.unsupported:
        flags.append(f"✘ {len(row.unsupported)} unsupported claim(s)")
    return flags


def _figures_line(row: AnswerRow) -> str:
    parts = [f"keyword recall {row.keyword_recall:.2f}" if row.keyword_recall is not None else "",
             f"F1 {row.f1:.2f}" if row.f1 is not None else "",
             f"first token {row.first_token_s:.1f} s" if row.first_token_s is not None else "",
             f"{row.seconds:.1f} s", f"{row.completion_tokens} tokens",
             f"${row.usd:.5f}" if row.usd is not None else ""]  # fmt: skip
    return " · ".join(p for p in parts if p)


def _judge_html(judge: Mapping[str, object] | None) -> str:
    if not judge:
        return ""
    if judge.get("error"):
        return f"<p><b>Judge:</b> {html.escape(str(judge['error']))}</p>"
    items = "".join(
        f"<li>{c} {judge[c]:.0f}/5: {html.escape(str(judge.get(f'{c}_reason', '')))}</li>" for c in CRITERIA
    )
    return f"<p><b>Judge</b></p><ul>{items}</ul>"


def _cited_html(row: AnswerRow, passages: Sequence[Passage]) -> str:
    if not passages:
        return f"<p><b>Cited passages:</b> {row.cited_passages or 'none'}</p>"
    blocks = "".join(
        f'<blockquote class="kb-passage"><b>{html.escape(p.label)}</b><br>'
        f'<span style="white-space:pre-wrap">{html.escape(plain_text(p.text, MAX_PASSAGE_CHARS))}</span></blockquote>'
        for p in passages
    )
    return f"<p><b>Cited passages</b></p>{blocks}"


def answer_details_html(rows: Sequence[AnswerRow], cited: Mapping[tuple[str, str], list[Passage]]) -> str:
    """One `<details>` per (model, question): the summary line names them with the flags; opened, it shows the
    answer, its figures, the passages it cited and the judge's grades."""
    if not rows:
        return "<p><i>No answers yet.</i></p>"
    items = []
    for row in rows:
        flags = answer_flags(row)
        marks = "".join(f[0] for f in flags if f[0] in "✔✘")
        summary = (
            f"<b>{html.escape(row.model)}</b> · {html.escape(row.category)} · {html.escape(row.question)} "
            f'<span class="kb-marks">{marks}</span>'
        )
        body = (
            f'<p><b>Answer</b></p><div class="kb-answer-text" style="white-space:pre-wrap">'
            f"{html.escape(row.answer) or '<i>(none)</i>'}</div>"
            f'<ul class="kb-flags">{"".join(f"<li>{html.escape(f)}</li>" for f in flags)}</ul>'
            f"<p>{html.escape(_figures_line(row))}</p>"
            + "".join(f"<p>unsupported: {html.escape(claim)}</p>" for claim in row.unsupported)
            + _cited_html(row, cited.get((row.model, row.question), []))
            + _judge_html(row.judge)
        )
        items.append(f'<details class="kb-answer" data-id="{html.escape(row.id)}"><summary>{summary}</summary>'
                     f'<div style="padding:0.5em 1em">{body}</div></details>')  # fmt: skip
    return f'<div class="kb-answers">{"".join(items)}</div>'
