"""`kbagent eval` in a terminal: runs the evaluator with a progress bar and prints its tables."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evaluation import evaluate_questions, load_questions
from evaluation.beir import count_judged, ingest_corpus, score_queries
from evaluation.judge import CRITERIA
from evaluation.questions import report_lines
from evaluation.thresholds import FIGURES, grade, retrieval_grade
from kbagent.components import Components
from kbagent.errors import UserError
from kbagent.progress import RichProgress
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase

if TYPE_CHECKING:
    from evaluation.answers import AnswerRow
    from knowledge_base.retrieval import SearchOptions

OptionsFor = Callable[[KnowledgeBase], "SearchOptions"]


def _bar(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
    )


def run_question_set(
    settings: Settings, path: Path, k: int, options_for: OptionsFor, limit: int | None, quiet: bool, kb: str | None
) -> tuple[Mapping[str, object], list[str]]:
    """Retrieval figures of the knowledge base `kb` (None: the default) on a question set."""
    try:
        questions = [q for q in load_questions(path) if q.answerable][:limit]
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    err = Console(stderr=True)
    with Components(settings) as parts, _bar(err, not quiet) as bar:
        task = bar.add_task("questions", total=len(questions))
        target = parts.knowledge_base(kb)
        result = evaluate_questions(target, questions, k, options_for(target), on_question=lambda _: bar.advance(task))
    summary = result.summary()
    if not quiet:
        _print_question_summary(summary)
    return summary, report_lines(result)


def _colour(value: float) -> str:
    return f"[{RICH_COLOUR[retrieval_grade(value)]}]{value:.3f}[/]"


def _print_question_summary(summary: Mapping[str, Any]) -> None:
    table = Table(
        "category",
        "questions",
        "MRR",
        f"nDCG@{summary['k']}",
        "coverage",
        title=f"Retrieval ({summary['mode']}, top {summary['k']})",
    )
    for name, row in [*summary["categories"].items(), ("overall", summary["overall"])]:
        style = "bold" if name == "overall" else None
        table.add_row(
            name,
            str(row["questions"]),
            _colour(row["mrr"]),
            _colour(row["ndcg"]),
            _colour(row["coverage"]),
            style=style,
        )
    Console().print(table)


def run_beir(
    settings: Settings, folder: Path, store: Path | None, options_for: OptionsFor, limit: int | None, quiet: bool
) -> tuple[Mapping[str, object], list[str]]:
    err = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="kbagent-beir-") as tmp:
        beir_settings = settings.override(data_dir=store or Path(tmp), chroma_url="", collection="beir")
        with Components(beir_settings) as parts:
            kb = parts.kb
            with RichProgress(err, enabled=not quiet) as ingest_progress:
                seconds = ingest_corpus(parts.ingestor(), folder, ingest_progress)
            total = min(count_judged(folder), limit or 10**9)
            with _bar(err, not quiet) as bar:
                task = bar.add_task("queries", total=total)
                result = score_queries(kb, folder, options_for(kb), lambda: bar.advance(task), limit, seconds)
    summary = result.summary()
    if not quiet:
        table = Table("dataset", "mode", "queries", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms")
        row = [summary["dataset"], summary["mode"], str(summary["queries"])]
        row += [f"{summary[m]:.4f}" for m in ("ndcg@10", "recall@100", "mrr@10")]
        row += [str(summary["latency_ms_p50"]), str(summary["latency_ms_p95"])]
        table.add_row(*row)
        Console().print(table)
    return summary, [json.dumps(q) for q in result.per_query]


# ---- answers ---------------------------------------------------------------------------------------------

RICH_COLOUR = {"good": "green", "fair": "yellow", "poor": "red"}


def _shade(name: str, value: float | None) -> str:
    """The figure coloured by `evaluation.thresholds`, the lines the app's leaderboard uses too."""
    if value is None:
        return "[dim]–[/]"
    shade = grade(name, value)
    return f"[{RICH_COLOUR[shade]}]{value:.3g}[/]" if shade else f"{value}"


def _print_leaderboard(board: Mapping[str, Any]) -> None:
    """One column per model, one row per figure (green, amber, red by `evaluation.thresholds`)."""
    table = Table("figure", *board, title="Answers")
    for name in FIGURES:
        table.add_row(name, *(_shade(name, board[m]["overall"][name]) for m in board))
    for name in CRITERIA:
        judged = [board[m]["overall"]["judge"] for m in board]
        if any(judged):
            table.add_row(f"judge {name} (1-5)", *(f"{j[name]:.2f}" if j else "–" for j in judged))
    Console().print(table)


def _answer_store(settings: Settings, folder: Path, store: Path | None) -> Settings:
    """A SQuAD-layout folder gets a store of its own beside the data dir, reused while its corpus is unchanged."""
    return settings.override(
        data_dir=store or settings.store.data_dir / "eval" / folder.resolve().name, chroma_url="", collection="eval"
    )


def run_answer_set(
    settings: Settings,
    path: Path,
    models: list[str | None],
    judge: str | None,
    sampling: tuple[int | None, int | None],
    report: Path | None,
    store: Path | None,
    quiet: bool,
    kb: str | None = None,
) -> dict[str, object]:
    """`kbagent eval SET --answers`: every model answers the sampled questions from the knowledge base `kb` (None:
    the default; a SQuAD-layout folder gets a store of its own); returns the leaderboard."""
    from agent.models import parse_model
    from evaluation.answer_sets import load_answer_set, sample
    from evaluation.answers import leaderboard, run_answers
    from evaluation.judge import Judge

    try:
        questions = sample(load_answer_set(path), *sampling)
    except (ValueError, KeyError, OSError) as exc:
        raise UserError(f"{path}: not a question set or a SQuAD-layout folder ({exc})") from exc
    err = Console(stderr=True)
    kb_settings = _answer_store(settings, path, store) if path.is_dir() else settings
    with (
        tempfile.TemporaryDirectory(prefix="kbagent-eval-") as tmp,
        Components(kb_settings, threads_path=Path(tmp) / "threads.sqlite3") as parts,
    ):
        if path.is_dir():
            with RichProgress(err, enabled=not quiet) as ingest_progress:
                ingest_corpus(parts.ingestor(), path, ingest_progress)
        target = parts.knowledge_base(None if path.is_dir() else kb)
        agents = [parts.agent(m, kb=target) for m in models]
        streams = {a.spec.label: (lambda q, a=a: a.stream(q)) for a in agents}
        grader = None
        if judge:
            grader = Judge(parts.models.build(judge, temperature=0.0), judge)
            if parse_model(judge).label in streams:
                err.print(f"warning: the judge {judge} also answers: it grades its own answers", markup=False)
        with _bar(err, not quiet) as bar:
            task = bar.add_task("answers", total=len(streams) * len(questions))
            right: dict[str, list[bool]] = {}

            def step(row: AnswerRow, done: int, total: int) -> None:
                right.setdefault(row.model, []).append(bool(row.contains))
                share = sum(right[row.model]) / len(right[row.model])
                bar.update(task, completed=done, description=f"{row.model} {share:.0%} right")

            rows = run_answers(streams, questions, report, grader, step, settings.eval.usd)
    board = leaderboard(rows)
    if not quiet:
        _print_leaderboard(board)
    return {"set": str(path), "questions": len(questions), "models": board}
