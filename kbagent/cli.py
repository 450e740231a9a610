"""The `kbagent` command. Heavy libraries are imported inside commands, so `--help` and errors are instant."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypedDict, TypeGuard

import typer

from kbagent import environment
from kbagent.errors import AnswerError, KbagentError, UnknownKnowledgeBase, UserError

if TYPE_CHECKING:
    from types import FrameType

    from langchain_core.documents import Document
    from rich.console import Console
    from rich.progress import TaskID

    from agent.events import Answer
    from kbagent.components import Components
    from kbagent.knowledge_bases import KnowledgeBases
    from knowledge_base.catalog import KbInfo
    from knowledge_base.config import Mode
    from knowledge_base.retrieval import SearchOptions
    from knowledge_base.store import KnowledgeBase

environment.prepare()

app = typer.Typer(
    name="kbagent",
    help="Ingest documents into a local knowledge base and search it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
KbOption = Annotated[
    str | None, typer.Option("--kb", help="The knowledge base (default: KBAGENT_KB, else the data dir's default).")
]


def _components() -> Components:
    """Every part, built on first use from the settings; close it when done."""
    from kbagent.components import Components
    from kbagent.settings import load_settings

    return Components(load_settings())


def _safe(text: str) -> str:
    """One printable line: newlines and control characters in file names escaped, rich markup neutralised."""
    from rich.markup import escape

    return escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, folders or http(s) URLs.")] = None,
    glob: Annotated[list[str] | None, typer.Option("--glob", help="Only files matching (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Skip files matching.")] = None,
    doc_type: Annotated[str | None, typer.Option("--doc-type", help="Set doc_type for every file.")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Also remove sources gone from these folders.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero if any file fails.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    crawl: Annotated[int, typer.Option("--crawl", min=0, help="Follow same-site links to this depth.")] = 0,
    max_pages: Annotated[int, typer.Option("--max-pages", min=1, help="Most pages crawled per call.")] = 50,
    sitemap: Annotated[list[str] | None, typer.Option("--sitemap", help="Ingest a sitemap's pages.")] = None,
    render: Annotated[bool, typer.Option("--render", help="Render every page in Chromium.")] = False,
    kb: KbOption = None,
) -> None:
    """Ingest files, folders and web pages (md, txt, pdf, html, docx, pptx, xlsx, xls, epub, csv, json, eml, mbox,
    images and scanned pages by OCR); unchanged ones cost nothing."""
    from ingest.web import is_url
    from kbagent.progress import RichProgress

    urls = [p for p in paths or [] if is_url(p)]
    files = [Path(p) for p in paths or [] if not is_url(p)]
    if not (files or urls or sitemap):
        raise UserError("nothing to ingest: give files, folders, URLs or --sitemap URL")
    err = _console(stderr=True)
    with _components() as parts, RichProgress(err, enabled=not json_out) as progress:
        report = parts.ingest(
            files,
            urls,
            kb=parts.knowledge_base(kb),
            sitemaps=sitemap or [],
            progress=progress,
            doc_type=doc_type,
            globs=glob,
            excludes=exclude,
            sync=sync,
            crawl=crawl,
            max_pages=max_pages,
            render=render or None,
        )
    counts = report.counts
    if json_out:
        print(
            json.dumps(
                {
                    **counts,
                    "embedded_chunks": report.embedded,
                    "reused_chunks": report.reused,
                    "seconds": round(report.seconds, 2),
                    "ocr_pages": report.ocr_pages,
                    "ocr_seconds": round(report.ocr_seconds, 2),
                    "problems": [o.__dict__ for o in report.outcomes if o.status in ("failed", "skipped") or o.notes],
                },
                indent=2,
            )
        )
    else:
        out = _console()
        for outcome in report.of("failed"):
            out.print(f"[red]failed[/]  {_safe(_given(outcome.source, files))}: {_safe(outcome.message)}")
        for outcome in report.of("skipped"):
            out.print(f"[yellow]skipped[/] {_safe(_given(outcome.source, files))}: {_safe(outcome.message)}")
        for outcome in report.outcomes:
            for note in outcome.notes:  # pages not read in a file that was ingested
                out.print(f"[yellow]note[/]    {_safe(_given(outcome.source, files))}: {_safe(note)}")
        out.print(_safe(report.summary()))
    if not report.succeeded or (strict and counts["failed"]):
        raise typer.Exit(1)


def _given(source: str, given: list[Path]) -> str:
    """A file as the user named it: relative to the folder they gave it in (`--json` keeps the full path)."""
    for folder in given:
        root = str(folder.expanduser().resolve())
        if source.startswith(root + os.sep):
            return source[len(root) + 1 :]
    return source


@app.command()
def watch(
    folders: Annotated[list[Path], typer.Argument(help="Folders to keep in sync.")],
    glob: Annotated[list[str] | None, typer.Option("--glob", help="Only files matching (repeatable).")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Skip files matching.")] = None,
    doc_type: Annotated[str | None, typer.Option("--doc-type", help="Set doc_type for every file.")] = None,
    once: Annotated[bool, typer.Option("--once", help="Sync once and exit (what a watch does first).")] = False,
    kb: KbOption = None,
) -> None:
    """Keep folders in sync while it runs: new and changed files ingested, deleted ones removed, moved ones
    re-pointed without re-embedding. Ctrl+C stops; the next start catches up with what changed meanwhile."""
    from ingest.watch import FolderWatcher, SyncResult
    from kbagent.progress import LineProgress, RichProgress

    for folder in folders:
        if not folder.expanduser().is_dir():
            raise UserError(f"not a folder: {folder}")
    out, err = _console(), _console(stderr=True)

    def show(result: SyncResult) -> None:
        report = result.report
        changed = report is None or any(n for name, n in report.counts.items() if name not in ("unchanged", "skipped"))
        if changed or result.full:
            out.print(f"{time.strftime('%H:%M:%S')} {_safe(result.summary())}")
        for outcome in result.problems:
            out.print(f"[red]failed[/]  {_safe(outcome.source)}: {_safe(outcome.message)}")

    with _components() as parts:
        target = parts.knowledge_base(kb)
        watcher = FolderWatcher(
            parts.ingestor(target),
            folders,
            globs=glob,
            excludes=exclude,
            doc_type=doc_type,
            debounce_ms=parts.settings.ingest.watch_debounce_ms,
        )
        if once:
            results = []
            for folder in watcher.folders:
                with RichProgress(err) as progress:
                    results.append(watcher.sync(folder, progress))
                show(results[-1])
            if any(r.report is None or not r.report.succeeded for r in results):
                raise typer.Exit(1)
            return
        if not target.watch_lock.acquire(wait=False):
            raise UserError(f"another `kbagent watch` follows the knowledge base {target.name!r}; one at a time")
        try:
            out.print(f"watching {len(watcher.folders)} folder(s) for {_safe(target.name)}; Ctrl+C stops")
            with _stop_on_ctrl_c() as stop, _stop_when_deleted(target, stop) as deleted:
                watcher.run(show, stop=stop, progress=lambda: LineProgress(err))
        finally:
            target.watch_lock.release()
        if deleted.is_set():
            out.print(f"the knowledge base {_safe(target.name)} was deleted; stopped watching")
            raise typer.Exit(1)
        out.print("stopped watching")


@contextlib.contextmanager
def _stop_when_deleted(kb: KnowledgeBase, stop: threading.Event, every_s: float = 0.5) -> Iterator[threading.Event]:
    """Sets `stop` (and the event it yields) once the knowledge base is deleted: `kbagent kb delete` waits for
    this watcher to let go of its watch lock."""
    deleted = threading.Event()

    def check() -> None:
        while not stop.wait(every_s):
            try:
                kb.check_alive()
            except UnknownKnowledgeBase:
                deleted.set()
                stop.set()
            except Exception:  # the catalog unreachable for a moment: the watch goes on
                continue

    checker = threading.Thread(target=check, name="kbagent-watch-alive", daemon=True)
    checker.start()
    try:
        yield deleted
    finally:
        stop.set()
        checker.join(timeout=every_s * 4)


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[threading.Event]:
    """An event Ctrl+C sets, so that a watch ends between batches (the one being synced finishes) rather than
    wherever the interrupt lands, where a library may swallow it; a second Ctrl+C interrupts at once."""
    stop = threading.Event()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield stop
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=200, help="How many chunks.")] = 10,
    doc_type: Annotated[str | None, typer.Option("--doc-type", help="Only this doc_type.")] = None,
    source_prefix: Annotated[str | None, typer.Option("--source", help="Only sources starting with this.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="hybrid | dense | keyword")] = None,
    mmr: Annotated[bool | None, typer.Option("--mmr/--no-mmr", help="Diversify results (MMR).")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Drop weaker chunks.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    kb: KbOption = None,
) -> None:
    """Search the knowledge base: top-k chunks with score, source, page and text."""
    with _components() as parts:
        target = parts.knowledge_base(kb)
        options = _options(target, mode, mmr, min_score)
        filters: dict[str, str | int | float | bool | None] = {
            "doc_type": doc_type,
            "source_prefix": _source_prefix(source_prefix),
        }
        docs = target.search(query, k=k, filters=filters, options=options)
        names = target.display_names()
        ids = target.records.source_ids(d.metadata.get("source", "") for d in docs)
    rows = [_doc_row(d, ids.get(d.metadata.get("source", ""), "")) for d in docs]
    if json_out:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    out = _console()
    if not rows:
        out.print("No results. (Is anything ingested? Try `kbagent sources`.)")
    for n, row in enumerate(rows, start=1):
        where = names.get(row["source"], row["source"]) + (f" ({row['location']})" if row["location"] else "")
        title = _safe(row["title"])
        out.print(f"[bold][{n}][/] {row['score']:.3f}  [bold]{title}[/] — {_safe(where)}  [dim]{row['doc_type']}[/]")
        text = " ".join(row["text"].split())
        out.print(f"    {text[:400]}{'…' if len(text) > 400 else ''}", markup=False)


def _options(kb: KnowledgeBase, mode: str | None, mmr: bool | None, min_score: float | None) -> SearchOptions:
    from dataclasses import replace

    from knowledge_base.retrieval import MODES

    if mode is not None and not _is_mode(mode):
        raise UserError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    options = kb.default_options()
    if mode is not None:
        options = replace(options, mode=mode)
    if mmr is not None:
        options = replace(options, mmr=mmr)
    return options if min_score is None else replace(options, min_score=min_score)


def _is_mode(value: str) -> TypeGuard[Mode]:
    from knowledge_base.retrieval import MODES

    return value in MODES


def _source_prefix(prefix: str | None) -> str | None:
    if not prefix or "://" in prefix or prefix.startswith("beir:"):
        return prefix
    return str(Path(prefix).expanduser().resolve())


class _DocRow(TypedDict):
    """A search hit as `kbagent search --json` prints it."""

    text: str
    source: str
    title: str
    doc_type: str
    page: int | None
    location: str
    section: str | None
    score: float | None
    similarity: float | None
    bm25: float | None
    chunk_id: str | None
    source_id: str


def _doc_row(doc: Document, source_id: str) -> _DocRow:
    from knowledge_base.records import location_of

    meta = doc.metadata
    return {
        "text": doc.page_content,
        "source": meta.get("source", ""),
        "title": meta.get("title", ""),
        "doc_type": meta.get("doc_type", ""),
        "page": meta.get("page"),
        "location": location_of(meta),
        "section": meta.get("section"),
        "score": meta.get("score"),
        "similarity": meta.get("similarity"),
        "bm25": meta.get("bm25"),
        "chunk_id": meta.get("chunk_id"),
        "source_id": source_id,
    }


@app.command()
def sources(
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False, kb: KbOption = None
) -> None:
    """List ingested sources with chunk counts and times."""
    with _components() as parts:
        listed = parts.knowledge_base(kb).sources()
    records = [r.as_dict() for r in listed]
    if json_out:
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table("source", "type", "doc_type", "chunks", "ingested at")
    for record, r in zip(listed, records, strict=True):  # the path relative to the folder it was ingested from
        table.add_row(record.display, str(r["kind"]), str(r["doc_type"]), str(r["chunks"]), str(r["ingested_at"]))
    _console().print(table)
    _console().print(f"{len(records)} sources, {sum(record.chunks for record in listed)} chunks")


@app.command()
def show(
    citation: Annotated[
        str, typer.Argument(help="SOURCE_ID[:CHUNK_ID] (from `sources --json`, `search --json`) or a /source/ address.")
    ],
    backing: Annotated[
        str | None, typer.Option("--backing", help="An answer's sentence: underline the passage words backing it.")
    ] = None,
    kb: KbOption = None,
) -> None:
    """Print a cited passage in its document: a few lines before and after, the passage in bold; for a PDF its
    page and a file://…#page=N link. Says so when the file was moved, deleted or edited since it was ingested."""
    from kbagent.source_view import parse_citation

    knowledge_base, source_id, chunk_id = parse_citation(citation)
    with _components() as parts:
        target = parts.knowledge_base(knowledge_base or kb)
        chunk = ""
        if backing and chunk_id:
            rows = target.keywords.rows([chunk_id])
            chunk = rows[0].text if rows else ""
        _show_passage(parts, target, source_id, chunk_id, backing or "", chunk)


def _show_passage(
    parts: Components,
    target: KnowledgeBase,
    source_id: str,
    chunk_id: str,
    backing: str = "",
    chunk: str = "",
    saved_passage: str = "",
    question: str = "",
) -> None:
    """`kbagent show`'s view of a passage: `backing` (an answer's sentences) underlined where `chunk` (the chunk's
    text) backs it; exits 1 when the file is gone or unreadable."""
    from agent.support import backing_spans
    from kbagent.source_view import show as show_view

    viewer = parts.viewer(kb=target)
    try:
        spans = backing_spans(backing, chunk, question) if backing and chunk else []
        view = viewer.view(source_id, chunk_id, backing=spans, saved_passage=saved_passage, as_text=True)
    finally:
        viewer.runner.close()
    show_view(_console(), view)
    if view.status in ("missing", "unreadable"):
        raise typer.Exit(1)


@app.command()
def stats(json_out: Annotated[bool, typer.Option("--json")] = False, kb: KbOption = None) -> None:
    """Totals: sources, chunks, doc types, model, store."""
    with _components() as parts:
        totals = parts.knowledge_base(kb).stats()
    if json_out:
        print(json.dumps(totals, indent=2))
        return
    for key, value in totals.items():
        print(f"{key:16} {value}")


@app.command()
def remove(
    targets: Annotated[list[str], typer.Argument(help="Sources (as listed by `sources`) or folders.")],
    kb: KbOption = None,
) -> None:
    """Delete sources, or every source under a folder, from the knowledge base."""
    with _components() as parts:
        base = parts.knowledge_base(kb)
        known = {r.source for r in base.sources()}
        chosen: list[str] = []
        for target in targets:
            candidates = {target, str(Path(target).expanduser().resolve())}
            exact = [c for c in candidates if c in known]
            under = [s for c in candidates for s in known if s.startswith(c.rstrip(os.sep) + os.sep)]
            if not exact and not under:
                _console(stderr=True).print(f"not in the knowledge base: {target}", markup=False)
            chosen.extend(exact + under)
        removed = base.remove(sorted(set(chosen)))
    for source in removed:
        print(f"removed {source}")
    print(f"{len(removed)} sources removed")
    if not removed:
        raise typer.Exit(1)


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help="The PostgreSQL database: postgresql://user:pw@host:port/db")],
    chroma_url: Annotated[
        str | None, typer.Option("--chroma-url", help="Also copy the vectors to this Chroma server (http://host:port).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    kb: Annotated[str | None, typer.Option("--kb", help="Only this knowledge base (default: all of them).")] = None,
) -> None:
    """Copy this data dir's knowledge bases (source records, keyword indexes) and threads into PostgreSQL (vectors
    stay where they are, or move with --chroma-url). Safe to rerun: what is already there is left alone."""
    from rich.progress import Progress as Bar

    from kbagent.components import migrate as run_migration
    from kbagent.settings import load_settings

    with Bar(console=_console(stderr=True), transient=True, disable=json_out) as bar:
        tasks: dict[str, TaskID] = {}

        def show(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        summary = run_migration(load_settings(), to, chroma_url, on_progress=show, kb=kb)
    if json_out:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        print(f"{key.replace('_', ' '):24} {value}")


@app.command("eval")
def evaluate(
    path: Annotated[Path, typer.Argument(help="A question set (.jsonl) or a BEIR folder (corpus/queries/qrels).")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="Top k for question sets.")] = 10,
    mode: Annotated[str | None, typer.Option("--mode", help="hybrid | dense | keyword")] = None,
    mmr: Annotated[bool | None, typer.Option("--mmr/--no-mmr")] = None,
    store: Annotated[Path | None, typer.Option("--store", help="BEIR: keep the corpus store here.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N questions.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write one JSON line per question.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    answers: Annotated[bool, typer.Option("--answers", help="Score the agent's answers, not retrieval.")] = False,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="With --answers: a model to compare (repeatable).")
    ] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="With --answers: an LLM judge, provider:model.")] = None,
    per_category: Annotated[
        int | None, typer.Option("--per-category", min=1, help="Only the first N questions of each category.")
    ] = None,
    kb: KbOption = None,
) -> None:
    """Score retrieval (MRR, nDCG, keyword coverage; nDCG@10/Recall@100 on BEIR), or with --answers the answers
    themselves, per model: correct, cited, supported, abstained, seconds, tokens, cost. --report resumes."""
    from kbagent.evaluation_view import run_answer_set, run_beir, run_question_set
    from kbagent.settings import load_settings

    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    settings = load_settings()
    if answers:
        models: list[str | None] = list(model) if model else [None]
        board = run_answer_set(settings, path, models, judge, (per_category, limit), report, store, json_out, kb)
        if json_out:
            print(json.dumps(board, indent=2))
        return
    if path.is_dir():
        if not (path / "corpus.jsonl").exists():
            raise UserError(f"{path} is not a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv)")
        summary, lines = run_beir(settings, path, store, lambda b: _options(b, mode, mmr, None), limit, json_out)
    else:
        options_for = lambda target: _options(target, mode, mmr, None)  # noqa: E731
        summary, lines = run_question_set(settings, path, k, options_for, limit, json_out, kb)
    if report:
        report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if json_out:
        print(json.dumps(summary, indent=2))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    model: Annotated[str | None, typer.Option("--model", help="provider:model (see `kbagent models`).")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Continue this conversation.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the answer and sources as JSON.")] = False,
    web: Annotated[
        bool, typer.Option("--web", help="Let the model search the web too (the provider in KBAGENT_WEB_SEARCH).")
    ] = False,
    open_n: Annotated[
        int | None,
        typer.Option("--open", metavar="N", help="Then show citation [N] in its document, as `kbagent show` does."),
    ] = None,
    kb: KbOption = None,
) -> None:
    """Answer a question from the knowledge base, streaming, then list the cited sources."""
    from kbagent.lazy import Soon

    if open_n is not None and json_out:
        raise UserError("--open shows the passage in the terminal: leave out --json")
    with _components() as parts:
        if web and parts.web_search is None:
            raise UserError("--web needs a web search provider: set KBAGENT_WEB_SEARCH (see docs/tools.md)")
        info = _thread_kb_info(parts, kb, thread)
        # llama.cpp reads the model (C, without the GIL) while this thread opens the store, imports the rest and
        # loads the embedder
        chat_model = Soon(partial(parts.chat_model, model, kb=info), "kbagent-chat-model")
        target = parts.knowledge_base(info)
        from agent.events import fold
        from kbagent.chat_view import TerminalRenderer

        target.embedder.load()
        show = None if json_out else TerminalRenderer(_console(), names=target.display_names())
        agent = parts.agent(model, kb=target, chat_model=chat_model.result())
        try:
            answer = fold(agent.stream(question, thread, web=web, caller="cli"), show)
        except AnswerError as exc:  # the renderer has shown it already
            if json_out:
                print(f"kbagent: error: {exc}", file=sys.stderr)
            raise typer.Exit(1) from exc
        if open_n is not None:
            _open_citation(parts, target, answer, open_n, question)
    if json_out:
        print(json.dumps(asdict(answer), indent=2, ensure_ascii=False))


def _open_citation(parts: Components, target: KnowledgeBase, answer: Answer, n: int, question: str) -> None:
    """`ask --open N`: citation [N] of the answer shown as `kbagent show` shows it, the words backing the
    answer's sentences that cite it underlined."""
    from agent.grounding import sentences
    from tools.knowledge_search import cited_numbers

    passage = next((p for p in answer.sources if p.n == n), None)
    if passage is None:
        cited = ", ".join(f"[{p.n}]" for p in answer.sources)
        raise UserError(f"--open {n}: the answer cites no [{n}]" + (f"; it cites {cited}" if cited else ""))
    source_id = target.records.source_ids([passage.source]).get(passage.source, "")
    if not source_id:
        raise UserError(f"--open {n}: {passage.source} is no longer in the knowledge base")
    backing = " ".join(s for s in sentences(answer.answer) if n in cited_numbers(s))
    _console().print()
    _show_passage(parts, target, source_id, passage.chunk_id, backing, passage.text, passage.text, question)


@app.command()
def chat(
    model: Annotated[str | None, typer.Option("--model", help="provider:model (see `kbagent models`).")] = None,
    thread: Annotated[str | None, typer.Option("--thread", help="Reopen this conversation.")] = None,
    kb: KbOption = None,
) -> None:
    """A conversation in the terminal, with history, tool calls shown, and /commands (/help)."""
    from kbagent.chat_view import ChatSession

    with _components() as parts:
        target = _thread_kb(parts, kb, thread)
        ChatSession(_console(), lambda model: parts.agent(model, kb=target), model, thread).run()


def _thread_kb(parts: Components, kb: str | None, thread: str | None) -> KnowledgeBase:
    """The knowledge base an answer comes from: the one named, else the conversation's own, else the default."""
    return parts.knowledge_base(_thread_kb_info(parts, kb, thread))


def _thread_kb_info(parts: Components, kb: str | None, thread: str | None) -> KbInfo:
    """`_thread_kb`'s catalog entry, the store not opened yet."""
    held = parts.threads.get(thread) if thread else None
    if kb is None and held is not None and held.kb:
        info = parts.catalog.get(held.kb)
        if info is None:
            raise UserError(f"conversation {thread}'s knowledge base was deleted")
        return info
    return parts.kb_info(kb)


kb_app = typer.Typer(help="Knowledge bases: each with its own documents, conversations and settings.")
app.add_typer(kb_app, name="kb")


def _kb_admin(parts: Components) -> KnowledgeBases:
    from kbagent.knowledge_bases import KnowledgeBases

    return KnowledgeBases(parts)


@kb_app.command("create")
def kb_create(
    name: Annotated[str, typer.Argument(help="Letters, digits, spaces, '.', '-' and '_'.")],
    description: Annotated[str, typer.Option("--description", help="What it holds, in a line.")] = "",
) -> None:
    """Make a new, empty knowledge base (it embeds and chunks as the settings say now, for good)."""
    with _components() as parts:
        info = _kb_admin(parts).create(name, description)
    _console().print(f"created knowledge base {_safe(info.name)}; add documents with `kbagent ingest --kb NAME ...`")


@kb_app.command("list")
def kb_list(json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """The knowledge bases, the default one marked."""
    with _components() as parts:
        listed = _kb_admin(parts).list()
        default = parts.kb_info(None).id
    if json_out:
        print(json.dumps([{**i.as_dict(), "default": i.id == default} for i in listed], indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table("", "name", "description", "own settings", "created")
    for info in listed:
        own = ", ".join(f"{k}={v}" for k, v in info.overrides.items() if k != "instructions")
        own += (", " if own else "") + ("instructions" if "instructions" in info.overrides else "")
        created = time.strftime("%Y-%m-%d", time.localtime(info.created_at))
        table.add_row("*" if info.id == default else "", _safe(info.name), _safe(info.description), _safe(own), created)
    _console().print(table)


@kb_app.command("rename")
def kb_rename(old: Annotated[str, typer.Argument()], new: Annotated[str, typer.Argument()]) -> None:
    """Rename a knowledge base (nothing is moved or embedded again; its conversations stay its own)."""
    with _components() as parts:
        info = _kb_admin(parts).rename(old, new)
    _console().print(f"renamed to {_safe(info.name)}")


@kb_app.command("delete")
def kb_delete(
    name: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask (scripts).")] = False,
) -> None:
    """Delete a knowledge base: its documents' vectors and records, uploads, watched folders and conversations
    (files it was ingested from stay). A `kbagent watch` of it stops first."""
    with _components() as parts:
        admin = _kb_admin(parts)
        totals = admin.describe(name)
        what = (
            f"{totals['name']!r}: {totals['sources']} sources, {totals['chunks']} chunks, "
            f"{totals['conversations']} conversations"
        )
        if not yes:
            if not sys.stdin.isatty():
                raise UserError(f"delete {what}? pass --yes to confirm without a terminal")
            if not typer.confirm(f"Delete the knowledge base {what}?", default=False):
                raise typer.Exit(1)
        deleted = admin.delete(name)
    _console().print(f"deleted the knowledge base {_safe(deleted.name)}", markup=False)


@kb_app.command("set")
def kb_set(
    name: Annotated[str, typer.Argument()],
    key: Annotated[str, typer.Argument(help="description, instructions, model, k, mode or min_score.")],
    value: Annotated[str, typer.Argument(help="The value; empty ('') goes back to the global setting.")],
) -> None:
    """Set one of a knowledge base's own settings, which override the global ones for it."""
    with _components() as parts:
        admin = _kb_admin(parts)
        info = admin.set(name, key, value)
        shown = admin.effective(info.name).get(key)
    now = info.description if key == "description" else shown[0] if shown else ""
    _console().print(f"{_safe(info.name)}: {key} = {_safe(repr(now))}", markup=False)


@kb_app.command("show")
def kb_show(
    name: Annotated[str | None, typer.Argument()] = None, json_out: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """A knowledge base (default: KBAGENT_KB's): its totals, and each setting with whose it is."""
    with _components() as parts:
        admin = _kb_admin(parts)
        info = parts.kb_info(name)
        described = admin.describe(info.id)
        effective = admin.effective(info.id)
    if json_out:
        settings = {k: {"value": v, "from": whose} for k, (v, whose) in effective.items()}
        print(json.dumps({**described, "settings": settings}, indent=2, ensure_ascii=False))
        return
    out = _console()
    for key in ("name", "description", "sources", "chunks", "conversations", "embedding_model", "created_at"):
        out.print(f"{key:16} {_safe(str(described[key]))}")
    out.print(f"{'chunking':16} {_safe(json.dumps(described['chunking']))}")
    for key, (value, whose) in effective.items():
        out.print(f"{key:16} {_safe(repr(value))}  [dim]({whose})[/]")


@app.command("threads")
def threads_command(
    kb: KbOption = None,
    every: Annotated[bool, typer.Option("--all", help="Of every knowledge base.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The conversations of a knowledge base (or --all), latest first: their ids for --thread and export."""
    with _components() as parts:
        names = {info.id: info.name for info in parts.catalog.all()}
        listed = parts.threads.list(limit=1000, kb=None if every else parts.kb_info(kb).id)
    rows = [{**t.__dict__, "kb": names.get(t.kb, "")} for t in listed]
    if json_out:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    out = _console()
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["updated_at"]))
        out.print(f"{row['thread_id']}  {when}  [dim]{_safe(row['kb'])}[/]  {_safe(row['title'])}")


@app.command("export")
def export(
    thread: Annotated[str, typer.Argument(help="The conversation's id (`kbagent threads`).")],
    fmt: Annotated[str, typer.Option("--format", help="md or json.")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
) -> None:
    """A conversation as Markdown or JSON: its questions, answers, and the passages each answer cited (source
    and place)."""
    from kbagent.export import conversation, to_markdown

    if fmt not in ("md", "json"):
        raise UserError(f"unknown format {fmt!r}; use md or json")
    with _components() as parts:
        found = conversation(parts, thread)
    text = to_markdown(found) if fmt == "md" else json.dumps(found.as_dict(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


models_app = typer.Typer(help="Which models can run here; pull a better one from the Hugging Face hub.")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What KBAGENT_MODEL can be set to on this machine, why the others can't run, and the GGUF files pulled."""
    if ctx.invoked_subcommand is not None:
        return
    from agent.hub import pulled_models
    from agent.models import ModelChoice, available_models
    from kbagent.settings import load_settings

    settings = load_settings()
    choices = available_models(settings.keys)
    llama = any(c.spec == "gguf:<path>" and c.usable for c in choices)
    for path in pulled_models(settings.store.models_path):
        size = path.stat().st_size / 2**30
        choices.append(ModelChoice(f"gguf:{path}", llama, f"{size:.2f} GB, in the models folder"))
    if json_out:
        print(json.dumps([c.__dict__ for c in choices], indent=2))
        return
    out = _console()
    for c in choices:
        mark = "[green]yes[/]" if c.usable else "[red]no [/]"
        out.print(f"{mark}  {_safe(c.spec):22} {c.reason}")
    out.print("[dim]More models: `kbagent models recommend`, then `kbagent models pull NAME`.[/]")
    if settings.embedding.dtype == "auto":
        from knowledge_base.calibration import describe_cached

        engine = describe_cached(settings.store.calibration_path)
    else:
        engine = f"KBAGENT_EMBEDDING_DTYPE={settings.embedding.dtype}"
    out.print(f"Embedding engine for ingest: {_safe(engine)}")


@models_app.command("recommend")
def models_recommend() -> None:
    """The catalogue `kbagent models pull NAME` offers, with what fits this machine's memory and GPU marked."""
    from agent.catalog import CATALOG, this_machine

    machine = this_machine()
    out = _console()
    gpu = f", GPU {machine.gpu_gb:.0f} GB" if machine.gpu_gb is not None else ", no CUDA GPU"
    out.print(f"This machine: {machine.ram_gb:.0f} GB RAM{gpu}.  kbagent models pull NAME")
    for model in CATALOG:
        fit = machine.fit(model)
        mark = {"gpu": "[green]fits GPU[/]", "ram": "[green]fits RAM[/]", "": "[red]too big[/]"}[fit]
        out.print(
            f"{mark}  [bold]{model.name:14}[/] {model.size_gb:4.1f} GB file, needs {model.memory_gb:3.1f} GB  "
            f"{model.description}\n{'':24}[dim]{model.spec}[/]"
        )


@models_app.command("pull")
def models_pull(
    name: Annotated[
        str | None, typer.Argument(help="A name from `kbagent models recommend`, or OWNER/REPO/FILE.gguf.")
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", help="The file's sha256 from a source you trust (for a file the hub gives none)."),
    ] = None,
) -> None:
    """Download a GGUF from the Hugging Face hub into KBAGENT_MODELS_DIR, checked against its sha256 (a file that
    can't be checked is kept aside, out of the models folder)."""
    if name is None:
        models_recommend()
        return
    environment.allow_downloads()  # before huggingface_hub is imported: it reads these once
    from agent.hub import PullError, pull
    from kbagent.settings import load_settings

    try:
        pulled = pull(name, load_settings().store.models_path, sha256=sha256)
    except PullError as exc:
        print(f"kbagent: error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    source = "one given" if pulled.checked_against == "given" else f"{pulled.checked_against}'s"
    _console().print(f"sha256 {pulled.sha256} matches the {source}. Use it with:")
    print(f"KBAGENT_MODEL=gguf:{pulled.path}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Listen address (KBAGENT_HOST).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port (KBAGENT_PORT).")] = None,
    openai: Annotated[
        bool, typer.Option("--openai", help="Also serve an OpenAI-compatible API at /v1 (KBAGENT_OPENAI_API).")
    ] = False,
) -> None:
    """Open the web app (chat, knowledge base, evaluation) on KBAGENT_HOST:KBAGENT_PORT; KBAGENT_AUTH sets a login.
    KBAGENT_MCP=on adds MCP at /mcp; --openai an OpenAI-compatible API at /v1."""
    from app import main as serve_app
    from kbagent.settings import load_settings

    serve_app(load_settings(host=host, port=port, openai_api=True if openai else None))


@app.command("mcp")
def mcp_stdio() -> None:
    """Serve the knowledge base over MCP on stdio (tools: search_knowledge_base, ask, list_sources; ingest_url
    with KBAGENT_MCP_WRITES=on). For the app's HTTP endpoint instead, set KBAGENT_MCP=on and run `serve`."""
    from agent.models import available_models
    from kbagent.frontends.mcp_server import serve_stdio
    from kbagent.services.operations import Services

    with _components() as parts:
        parts.kb  # noqa: B018  (opened now: a store that can't be opened is said before the client waits)
        serve_stdio(Services(parts, available_models(parts.settings.keys)), parts.settings.app.mcp_writes)


@app.command("tools")
def tools_command(json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """Every tool the agent may be offered and where it comes from: built-in, web search, outside MCP servers."""
    from tools.listing import list_tools
    from tools.mcp_client import make_mcp_tools

    with _components() as parts:
        hub = parts.mcp
        outside, notes = make_mcp_tools(hub) if hub is not None else ([], [])
        listed = list_tools(parts.web_search, outside)
        notes = [*(hub.problems if hub is not None else []), *notes]
    if json_out:
        print(json.dumps([t.as_dict() for t in listed], indent=2, ensure_ascii=False))
    else:
        from rich.table import Table

        table = Table("tool", "from", "local loop", "description")
        for t in listed:
            table.add_row(_safe(t.name), _safe(t.origin), "yes" if t.local_loop else "no", _safe(t.description))
        _console().print(table)
    for note in notes:
        _console(stderr=True).print(f"[yellow]{_safe(note)}[/]")


@app.command("serve-model")
def serve_model(
    path: Annotated[Path, typer.Argument(help="A GGUF whose chat template writes <tool_call> (Qwen2.5 and kin).")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    alias: Annotated[str | None, typer.Option("--alias", help="The model name clients use.")] = None,
    tool_first: Annotated[bool, typer.Option("--tool-first", help="Start each new question with a tool call.")] = False,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="The Bearer token clients must send (their OPENAI_API_KEY).")
    ] = None,
) -> None:
    """Serve a GGUF over an OpenAI-compatible API with working tool calls, for KBAGENT_MODEL=openai:NAME. No web
    page may call it (no CORS); without --api-key, any program that can reach the port can."""
    from agent.llama_server import main as serve_llama

    if not path.is_file():
        raise UserError(f"no GGUF file at {path}")
    extra = (["--alias", alias] if alias else []) + (["--api-key", api_key] if api_key else [])
    serve_llama([str(path), "--host", host, "--port", str(port), *extra, *(["--tool-first"] if tool_first else [])])


@app.command()
def config(json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the effective settings (secrets masked)."""
    from kbagent.settings import load_settings

    values = load_settings().masked()
    if json_out:
        print(json.dumps(values, indent=2))
        return
    for key, value in values.items():
        print(f"{key:22} {value}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("chromadb", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        app()
    except KbagentError as exc:
        print(f"kbagent: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("kbagent: interrupted; rerun the same command to finish (nothing is lost)", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
