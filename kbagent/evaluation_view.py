"""`kbagent eval` in a terminal: runs the evaluator with a progress bar and prints its tables."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evaluation import evaluate_questions, load_questions
from evaluation.beir import count_judged, ingest_corpus, score_queries
from evaluation.questions import report_lines
from kbagent.components import Components
from kbagent.errors import UserError
from kbagent.progress import RichProgress
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase

OptionsFor = Callable[[KnowledgeBase], Any]


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
    settings: Settings, path: Path, k: int, options_for: OptionsFor, limit: int | None, quiet: bool
) -> tuple[dict[str, Any], list[str]]:
    try:
        questions = [q for q in load_questions(path) if q.answerable][:limit]
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    err = Console(stderr=True)
    with Components(settings) as parts, _bar(err, not quiet) as bar:
        task = bar.add_task("questions", total=len(questions))
        kb = parts.kb
        result = evaluate_questions(kb, questions, k, options_for(kb), on_question=lambda _: bar.advance(task))
    summary = result.summary()
    if not quiet:
        _print_question_summary(summary)
    return summary, report_lines(result)


def _colour(value: float) -> str:
    return f"[{'green' if value >= 0.8 else 'yellow' if value >= 0.5 else 'red'}]{value:.3f}[/]"


def _print_question_summary(summary: dict[str, Any]) -> None:
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
) -> tuple[dict[str, Any], list[str]]:
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
