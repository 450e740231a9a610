"""What the app's handlers call: agents per session choice, ingest, sources, search, evaluation. No Gradio here.

The parts (settings, knowledge base, agent factory, ingest function) are built at the edge and handed in, so the
tests can pass a scripted model; everything here is shared by every browser session and API client.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.events import Done, Error, Event, Sources, ToolEnd
from agent.memory import ThreadStore
from agent.runner import Agent
from evaluation import QuestionResult, QuestionSetResult, evaluate_questions, load_questions
from ingest import IngestReport, Progress, build_ingestor
from ingest.pipeline import Outcome
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions
from ui.uploads import store_upload

LOCAL_PROVIDERS = {"embedded", "gguf", "hf"}  # in-process models: one answer at a time per model
MAX_AGENTS = 4  # agents kept for (model, k, mode, temperature) choices; the least recently used goes first


@dataclass(frozen=True)
class SessionChoices:
    """What the Settings tab changes for one browser session."""

    model: str = ""
    k: int = 5
    mode: str = "hybrid"
    temperature: float = 0.2


class MakeAgent(Protocol):
    def __call__(self, model: str | None, choices: SessionChoices) -> Agent: ...


class Ingest(Protocol):
    def __call__(
        self,
        paths: list[Path],
        urls: list[str],
        *,
        crawl: int = 0,
        doc_type: str | None = None,
        progress: Progress | None = None,
    ) -> IngestReport: ...


class SessionKB:
    """The shared knowledge base seen with one session's retrieval mode (the agent's tools read its options)."""

    def __init__(self, kb: KnowledgeBase, mode: str) -> None:
        self._kb = kb
        self.mode = mode

    def default_options(self) -> SearchOptions:
        from dataclasses import replace

        return replace(self._kb.default_options(), mode=self.mode)

    def search(
        self, query: str, k: int | None = None, filters: dict[str, Any] | None = None, options: Any = None
    ) -> list[Any]:
        return self._kb.search(query, k=k, filters=filters, options=options or self.default_options())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kb, name)


def default_agent_factory(
    settings: Any, kb: KnowledgeBase, threads: ThreadStore, scraper: Callable[[str], str] | None = None
) -> MakeAgent:
    """Real agents: the model from the model factory (`agent/models.py`), the session's k, mode, temperature."""

    def make(model: str | None, choices: SessionChoices) -> Agent:
        update: dict[str, Any] = {"agent_k": choices.k, "temperature": choices.temperature, "search_mode": choices.mode}
        if model is not None:
            update["model"] = "" if model == "embedded" else model
        session = settings.model_copy(update=update)
        return Agent(session, SessionKB(kb, choices.mode), scraper=scraper, threads=threads)  # type: ignore[arg-type]

    return make


def default_ingest(settings: Any, kb: KnowledgeBase) -> Ingest:
    """Files through the ingest pipeline, URLs through the guarded fetcher (same calls as `kbagent ingest`)."""
    from ingest.web import combine, ingest_web

    def run(
        paths: list[Path],
        urls: list[str],
        *,
        crawl: int = 0,
        doc_type: str | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        ingestor = build_ingestor(settings, kb)
        reports = []
        if paths:
            reports.append(ingestor.run(paths, doc_type=doc_type, progress=progress))
        if urls:
            reports.append(ingest_web(ingestor, settings, urls, crawl=crawl, doc_type=doc_type, progress=progress))
        return combine(*reports)

    return run


class ReportingProgress(Progress):
    """Ingest progress as (fraction, text) calls, for a Gradio progress bar."""

    def __init__(self, report: Callable[[float, str], None]) -> None:
        self.report = report
        self.files = self.done = self.planned = self.embedded = 0

    def files_found(self, total: int) -> None:
        self.files += total
        self._show()

    def chunks_planned(self, count: int) -> None:
        self.planned += count
        self._show()

    def chunks_embedded(self, count: int) -> None:
        self.embedded += count
        self._show()

    def file_done(self, outcome: Outcome) -> None:
        self.done += 1
        self._show()

    def _show(self) -> None:
        fraction = self.embedded / self.planned if self.planned else (self.done / self.files if self.files else 0.0)
        text = f"{self.done}/{self.files or '?'} sources, {self.embedded}/{self.planned} chunks embedded"
        with contextlib.suppress(Exception):  # a progress bar never stops an ingest
            self.report(min(max(fraction, 0.0), 1.0), text)


@dataclass
class Answer:
    answer: str
    thread_id: str
    model: str
    seconds: float
    sources: list[dict[str, Any]]
    tools: list[dict[str, Any]]


class Services:
    def __init__(
        self,
        settings: Any,
        kb: KnowledgeBase,
        make_agent: MakeAgent,
        ingest: Ingest | None = None,
        threads: ThreadStore | None = None,
    ) -> None:
        self.settings = settings
        self.kb = kb
        self.make_agent = make_agent
        self.ingest = ingest or default_ingest(settings, kb)
        self.threads = threads or ThreadStore(settings.threads_path)
        self.uploads_dir = Path(settings.data_dir) / "uploads"
        self._agents: dict[tuple[str, SessionChoices], Agent] = {}
        self._agent_lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        self._write_lock = threading.Lock()

    def default_choices(self) -> SessionChoices:
        s = self.settings
        return SessionChoices(model=s.model or "embedded", k=s.agent_k, mode=s.search_mode, temperature=s.temperature)

    # ---- chat ------------------------------------------------------------------------------------

    def agent(self, choices: SessionChoices) -> Agent:
        """One agent per (model, k, mode, temperature), built on first use and shared by every session (the last
        few are kept: a temperature change rebuilds the model, and a local model is large)."""
        key = (choices.model or "embedded", choices)
        with self._agent_lock:
            agent = self._agents.pop(key, None)
            if agent is None:
                agent = self.make_agent(choices.model or None, choices)
            self._agents[key] = agent  # most recently used last
            while len(self._agents) > MAX_AGENTS:  # each may hold a local model in memory
                self._agents.pop(next(iter(self._agents)))
            return agent

    def stream(self, question: str, thread_id: str | None, choices: SessionChoices) -> Iterator[Event]:
        """The agent's events; in-process models answer one question at a time (they share one context)."""
        try:
            agent = self.agent(choices)
        except Exception as exc:  # a model that can't be built here: said in the chat, never a stack trace
            yield Error(f"the model {choices.model or 'embedded'!r} can't be used: {_first_line(exc)}")
            return
        lock = contextlib.nullcontext()
        if agent.spec.provider in LOCAL_PROVIDERS:
            with self._agent_lock:
                lock = self._model_locks.setdefault(agent.spec.label, threading.Lock())  # type: ignore[assignment]
        with lock:
            yield from agent.stream(question, thread_id or None)

    def ask(self, question: str, thread_id: str | None, choices: SessionChoices) -> Answer:
        sources: list[Any] = []
        tools: list[dict[str, Any]] = []
        for event in self.stream(question, thread_id, choices):
            if isinstance(event, Error):
                raise RuntimeError(event.message)
            if isinstance(event, ToolEnd):
                tools.append({"tool": event.name, "seconds": round(event.seconds, 3), "ok": event.ok})
            elif isinstance(event, Sources):
                sources = [p.as_dict() for p in event.passages]
            elif isinstance(event, Done):
                return Answer(event.answer, event.thread_id, event.model, round(event.seconds, 3), sources, tools)
        raise RuntimeError("the agent stopped without an answer")

    def history(self, thread_id: str, choices: SessionChoices) -> list[tuple[str, str]]:
        return self.agent(choices).history(thread_id)

    # ---- knowledge base --------------------------------------------------------------------------

    def store_uploads(self, files: Iterable[tuple[str, str]]) -> tuple[list[Path], list[Outcome]]:
        """(temp path, original name) pairs → files under DATA_DIR/uploads; problems as outcomes."""
        stored, problems = [], []
        for temp, name in files:
            try:
                stored.append(store_upload(temp, name, self.uploads_dir))
            except (OSError, ValueError) as exc:
                problems.append(Outcome(name, "failed", f"could not store the upload: {exc}"))
        return stored, problems

    def ingest_paths(
        self, paths: list[Path], urls: list[str], crawl: int = 0, doc_type: str | None = None, progress: Any = None
    ) -> IngestReport:
        with self._write_lock:
            return self.ingest(paths, urls, crawl=crawl, doc_type=doc_type, progress=progress)

    def sources(self) -> list[Any]:
        return self.kb.sources()

    def remove(self, sources: list[str]) -> list[str]:
        """Removes sources; an uploaded copy (under DATA_DIR/uploads) goes with its source."""
        with self._write_lock:
            removed = self.kb.remove(sources)
        root = self.uploads_dir.resolve()
        for source in removed:
            path = Path(source)
            if "://" not in source and path.parent == root and path.is_file():
                path.unlink(missing_ok=True)
        return removed

    def reingest(self, sources: list[str], progress: Any = None) -> IngestReport:
        """Reads the chosen sources again (files from disk, pages from the web); unchanged ones cost nothing."""
        from ingest.web import combine

        records = {r.source: r for r in self.kb.sources()}
        reports = []
        by_type: dict[str, tuple[list[Path], list[str]]] = {}
        for source in sources:
            record = records.get(source)
            if record is None:
                continue
            paths, urls = by_type.setdefault(record.doc_type, ([], []))
            (urls.append(source) if "://" in source else paths.append(Path(source)))
        for doc_type, (paths, urls) in by_type.items():
            reports.append(self.ingest_paths(paths, urls, doc_type=doc_type or None, progress=progress))
        return combine(*reports)

    def search(self, query: str, k: int, mode: str) -> list[Any]:
        return SessionKB(self.kb, mode).search(query, k=k)

    def stats(self) -> dict[str, Any]:
        return self.kb.stats()

    # ---- evaluation ------------------------------------------------------------------------------

    def evaluate(
        self, path: Path, k: int, mode: str, on_question: Callable[[int, int, QuestionResult], None] | None = None
    ) -> QuestionSetResult:
        questions = load_questions(path)
        total = len(questions)
        done = 0

        def step(result: QuestionResult) -> None:
            nonlocal done
            done += 1
            if on_question:
                on_question(done, total, result)

        options = SessionKB(self.kb, mode).default_options()
        return evaluate_questions(self.kb, questions, k, options, on_question=step)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
