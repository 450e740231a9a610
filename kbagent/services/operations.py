"""What the app's handlers call: agents per session choice, ingest, sources, search, evaluations. No Gradio here.

The parts come built from `kbagent.components` (tests build them with a scripted model); everything here is
shared by every browser session and API client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import DEFAULT_K, DEFAULT_TEMPERATURE
from agent.events import Answer, Error, Event, Sources, fold
from agent.models import ModelChoice, app_model_refusal, provider_of
from agent.runner import Agent
from evaluation import QuestionResult, QuestionSetResult, evaluate_questions, load_questions
from evaluation.answer_sets import load_answer_set, sample
from evaluation.answers import AnswerRow, leaderboard, run_answers
from evaluation.judge import Judge
from ingest import IngestReport, Progress
from ingest.report import Outcome
from kbagent.errors import UnknownKnowledgeBase, UserError
from kbagent.services.answering import POLL_S, AnswerSlots, Feed, start
from kbagent.services.turns import TurnLog
from kbagent.services.uploads import StoredUpload, store_upload
from kbagent.services.watching import WatchedFolders
from knowledge_base.config import DEFAULT_MODE, Mode
from knowledge_base.retrieval import SearchOptions

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable

    from kbagent.components import Components
    from knowledge_base.records import SourceRecord
    from knowledge_base.store import KnowledgeBase
    from tools.knowledge_search import Passage

log = logging.getLogger(__name__)
CHAT_CONCURRENCY = 20  # simultaneous answers (chat, API, MCP); in-process models still answer one at a time
MAX_QUESTION_CHARS = 4000
MAX_AGENTS = 4  # agents kept for (model, k, mode) choices; the least recently used goes first


@dataclass(frozen=True)
class SessionChoices:
    """What the Settings tab changes for one browser session; the defaults are the settings' own."""

    model: str = ""
    k: int = DEFAULT_K
    mode: Mode = DEFAULT_MODE
    temperature: float = DEFAULT_TEMPERATURE
    web: bool = False  # the model may search the web too (the chat's switch; only where a provider is configured)
    kb: str = ""  # the knowledge base answering, by id (`kb_choices`); empty: the default one


class FairLock:
    """A lock handed out in the order it was asked for. An answers evaluation takes a local model's lock once per
    question; a plain `threading.Lock` lets it take the lock back before a waiting chat wakes, so chat could wait
    for the whole run. Here whoever asked first answers next: chat waits at most for the answer in progress. A
    waiter whose answer is cancelled gives up its place in the line."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._abandoned: set[int] = set()

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        """Waits for this caller's turn; False (and no turn) when `cancel` is set first."""
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                if cancel is not None and cancel.is_set():
                    self._abandoned.add(ticket)
                    return False
                self._turns.wait(POLL_S if cancel is not None else None)
        return True

    def release(self) -> None:
        with self._turns:
            self._serving += 1
            while self._serving in self._abandoned:  # tickets given up while waiting are skipped
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._turns.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class _TakingTurns:
    """A chat model whose `invoke` waits for the model's turn (a judge on the in-process model chat uses)."""

    def __init__(
        self, model: Runnable[LanguageModelInput, BaseMessage], turn: contextlib.AbstractContextManager[object]
    ) -> None:
        self.model = model
        self.turn = turn

    def invoke(self, prompt: str) -> BaseMessage:
        with self.turn:
            return self.model.invoke(prompt)


@dataclass
class AnswersRun:
    """An answers evaluation's rows, and the passages each answer cited (by model and question), for showing."""

    rows: list[AnswerRow]
    cited: dict[tuple[str, str], list[Passage]] = field(default_factory=dict)

    def leaderboard(self) -> Mapping[str, object]:
        return leaderboard(self.rows)


class ReportingProgress(Progress):
    """Ingest progress as (fraction, text) calls, for a Gradio progress bar."""

    def __init__(self, report: Callable[[float, str], None]) -> None:
        self.report = report
        self.files = self.done = self.planned = self.embedded = self.ocr_pages = self.ocr_done = 0

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

    def ocr_planned(self, pages: int) -> None:
        self.ocr_pages += pages
        self._show()

    def ocr_page_done(self, seconds: float) -> None:
        self.ocr_done += 1
        self._show()

    def _show(self) -> None:
        fraction = self.embedded / self.planned if self.planned else (self.done / self.files if self.files else 0.0)
        text = f"{self.done}/{self.files or '?'} sources, {self.embedded}/{self.planned} chunks embedded"
        if self.ocr_pages:
            text += f", {self.ocr_done}/{self.ocr_pages} pages OCR'd"
        with contextlib.suppress(Exception):  # a progress bar never stops an ingest
            self.report(min(max(fraction, 0.0), 1.0), text)


class Services:
    """The app's operations over the parts built in `kbagent.components`, shared by every browser session."""

    def __init__(self, parts: Components, models: list[ModelChoice]) -> None:
        """`models`: what `available_models` offers here, the list the model picker shows; app users may pick
        only from it (see `allowed_model`)."""
        self.parts = parts
        self.models = models
        self.settings = parts.settings
        self.kb = parts.kb
        self.threads = parts.threads
        self.uploads_dir = self.kb.place.uploads_path
        self.turns = TurnLog(parts.settings.store.data_dir / "chat_turns.sqlite3")  # tool calls, sources per answer
        self._agents: dict[tuple[str, str, int, Mode], Agent] = {}
        self._agent_lock = threading.Lock()
        self._model_locks: dict[str, FairLock] = {}
        self._write_lock = threading.Lock()
        self.slots = AnswerSlots(CHAT_CONCURRENCY, parts.settings.app.answers_per_client)
        self.watched = WatchedFolders(
            lambda: parts.ingestor(self.kb),
            self.kb.place.watch_list_path,
            parts.settings.app.watch_root_paths,
            parts.settings.ingest.watch_debounce_ms,
        )

    def default_choices(self) -> SessionChoices:
        agent, search = self.settings.agent, self.settings.search
        return SessionChoices(
            model=agent.model or "embedded", k=agent.k, mode=search.mode, temperature=agent.temperature
        )

    # ---- knowledge bases ---------------------------------------------------------------------------

    def knowledge_base(self, kb: str | None = None) -> KnowledgeBase:
        """A knowledge base by name (or id), looked up for each call: front doors name it per request, and nothing
        here remembers a "current" one. None: the default. UnknownKnowledgeBase when none has it."""
        return self.kb if kb is None else self.parts.knowledge_base(kb)

    def kb_choices(self, kb: str | None = None) -> SessionChoices:
        """The choices a knowledge base answers with when a request names only it: its own model, k and retrieval
        mode where it sets them, else the global ones (None: the default knowledge base)."""
        info = self.parts.info_of(self.kb) if kb is None else self.parts.kb_info(kb)
        settings = self.parts.kb_settings(info)
        agent, search = settings.agent, settings.search
        return SessionChoices(
            model=agent.model or "embedded", k=agent.k, mode=search.mode, temperature=agent.temperature, kb=info.id
        )

    def knowledge_bases(self) -> list[dict[str, object]]:
        """Every knowledge base with its description and totals (sources, chunks), the default one marked."""
        default = self.parts.info_of(self.kb).id
        listed: list[dict[str, object]] = []
        for info in self.parts.catalog.all():
            try:
                kb = self.parts.knowledge_base(info)
                sources, chunks = len(kb.records.hashes()), kb.collection.count()
            except UnknownKnowledgeBase:  # deleted meanwhile
                continue
            listed.append(
                {
                    "name": info.name,
                    "description": info.description,
                    "sources": sources,
                    "chunks": chunks,
                    "default": info.id == default,
                }
            )
        return listed

    def _kb_by_id(self, kb_id: str) -> KnowledgeBase:
        """The knowledge base a `SessionChoices.kb` names (empty: the default), by id: a rename meanwhile is fine."""
        if not kb_id:
            return self.kb
        info = self.parts.catalog.get(kb_id)
        if info is None:
            raise UnknownKnowledgeBase("the knowledge base was deleted")
        return self.parts.knowledge_base(info)

    # ---- chat ------------------------------------------------------------------------------------

    def allowed_model(self, model: str, kb: str = "") -> None:
        """Raises UserError, before anything is built, when an app user may not have `model` (`app_model_refusal`:
        the configured model, or the model knowledge base `kb` (an id) is set to answer with, the offered ones,
        local model files from the models folder only)."""
        app, store = self.settings.app, self.settings.store
        configured = [self.settings.agent.model]
        if kb:
            info = self.parts.catalog.get(kb)
            if info is not None:
                configured.append(self.parts.kb_settings(info).agent.model)
        problems = [
            app_model_refusal(model, self.models, store.models_path, configured=c, free_paths=app.free_model_paths)
            for c in dict.fromkeys(configured)
        ]
        if all(problems):
            raise UserError(str(problems[0]))

    def agent(self, choices: SessionChoices) -> Agent:
        """One agent per (model, k, mode), built on first use and shared by every session (the last few are kept);
        agents on one model share it (a local model is large), and a session's temperature goes with each answer
        (`Agent.stream`), so it builds nothing. Only models an app user may pick are built."""
        model = choices.model or "embedded"
        key = (choices.kb, model, choices.k, choices.mode)
        self.allowed_model(model, choices.kb)
        with self._agent_lock:
            agent = self._agents.pop(key, None)
            if agent is None:
                built = next((a.model for (_, m, _, _), a in self._agents.items() if m == model), None)
                kb = self._kb_by_id(choices.kb)
                agent = self.parts.agent(model, kb=kb, k=choices.k, mode=choices.mode, chat_model=built)
            self._agents[key] = agent  # most recently used last
            while len(self._agents) > MAX_AGENTS:  # each may hold a local model in memory
                self._agents.pop(next(iter(self._agents)))
            return agent

    def warm_up(self) -> None:
        """At app start, in the background: build the default agent (a local model loads, seconds) and let it read
        its system prompt, so the first question pays for neither. A failure here is only logged: the first
        question will say what is wrong."""
        try:
            agent = self.agent(self.default_choices())
            lock = self._model_lock(agent)
            if lock is not None:
                with lock:
                    self.parts.warm_up(agent.model)
        except Exception as exc:  # the question that needs the model says why, in the chat
            log.warning("model warm-up failed: %s", _first_line(exc))

    @property
    def web_search_offered(self) -> bool:
        """Whether a web search provider is configured (KBAGENT_WEB_SEARCH): the chat shows its switch only then."""
        return bool(self.settings.tools.web_search)

    def answer(self, question: str, thread_id: str | None, choices: SessionChoices, client: str) -> Feed:
        """`stream`, run by a worker thread (`kbagent.services.answering`): the caller reads the events and holds
        nothing, and closing the feed stops the answer. Raises Busy when `client` (an address) has its share of
        answers."""
        stall = self.settings.app.answer_stall_s
        return start(
            lambda cancel: self.stream(question, thread_id, choices, cancel, caller=client), self.slots, client, stall
        )

    def answer_detached(
        self, question: str, earlier: list[tuple[str, str]], choices: SessionChoices, client: str
    ) -> Feed:
        """`stream_detached`, run by a worker thread, as `answer`."""
        stall = self.settings.app.answer_stall_s
        return start(
            lambda cancel: self.stream_detached(question, earlier, choices, cancel, caller=client),
            self.slots,
            client,
            stall,
        )

    def stream(
        self,
        question: str,
        thread_id: str | None,
        choices: SessionChoices,
        cancel: threading.Event | None = None,
        caller: str = "",
    ) -> Iterator[Event]:
        """The agent's events; in-process models answer one question at a time (they share one context). Front
        doors call `answer`, which runs this in a worker thread: the model's turn is never held across a
        network write. `caller` (a client address) goes to the audit log of outside tool calls."""
        try:
            agent = self.agent(choices)
        except Exception as exc:  # a model that can't be built here: said in the chat, never a stack trace
            yield Error(f"the model {choices.model or 'embedded'!r} can't be used: {_first_line(exc)}")
            return
        yield from self._in_turn(agent, question, thread_id or None, choices, cancel, caller)

    def _in_turn(
        self,
        agent: Agent,
        question: str,
        thread_id: str | None,
        choices: SessionChoices,
        cancel: threading.Event | None,
        caller: str = "",
    ) -> Iterator[Event]:
        """`agent.stream` once it is the model's turn (in-process models); a cancelled answer gives up its place."""
        lock = self._model_lock(agent)
        if lock is not None and not lock.acquire(cancel):
            yield Error("the answer was cancelled while it waited for the model")
            return
        try:
            web = choices.web and self.web_search_offered
            yield from agent.stream(
                question, thread_id, temperature=choices.temperature, cancel=cancel, web=web, caller=caller
            )
        finally:
            if lock is not None:
                lock.release()

    def _model_lock(self, agent: Agent) -> FairLock | None:
        """The model's lock when it runs in this process (it answers one question at a time), else None."""
        if not provider_of(agent.spec).in_process:
            return None
        with self._agent_lock:
            return self._model_locks.setdefault(agent.spec.label, FairLock())

    def stream_detached(
        self,
        question: str,
        earlier: list[tuple[str, str]],
        choices: SessionChoices,
        cancel: threading.Event | None = None,
        caller: str = "",
    ) -> Iterator[Event]:
        """An answer in a thread of its own, started with the `earlier` (role, text) turns and deleted when done:
        for clients that keep the conversation themselves (the OpenAI-compatible API, MCP), so it never shows
        among the app's conversations."""
        try:
            agent = self.agent(choices)
        except Exception as exc:  # a model that can't be built here
            yield Error(f"the model {choices.model or 'embedded'!r} can't be used: {_first_line(exc)}")
            return
        thread_id = self.threads.new_thread()
        try:
            agent.seed(thread_id, earlier)
            yield from self._in_turn(agent, question, thread_id, choices, cancel, caller)
        finally:
            self.threads.delete(thread_id)

    def ask(self, question: str, thread_id: str | None, choices: SessionChoices, client: str) -> Answer:
        """The whole answer (the API); raises AnswerError when there is none, Busy when `client` has its share."""
        with self.answer(question, thread_id, choices, client) as feed:
            return fold(feed)

    def history(self, thread_id: str, choices: SessionChoices) -> list[tuple[str, str]]:
        return self.agent(choices).history(thread_id)

    # ---- knowledge base --------------------------------------------------------------------------

    def ingest_uploads(
        self, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> tuple[IngestReport, list[StoredUpload]]:
        """(temp path, original name) pairs → files under DATA_DIR/uploads, ingested; problems storing one are
        outcomes. A file that ends up backing no source (a type ingest refuses, unreadable, or the ingest failed)
        is deleted. Also returns the uploads whose bytes were already stored under another name: they are that
        source, not a second one."""
        stored, problems = [], []
        for temp, name in files:
            try:
                stored.append(store_upload(temp, name, self.uploads_dir))
            except (OSError, ValueError) as exc:
                problems.append(Outcome(name, "failed", f"could not store the upload: {exc}"))
        paths = list(dict.fromkeys(u.path for u in stored))
        try:
            report = self.ingest_paths(paths, [], progress=progress)
        finally:
            self._discard_unrecorded(paths)
        report.outcomes[:0] = problems
        return report, [u for u in stored if u.renamed]

    def _discard_unrecorded(self, paths: list[Path]) -> None:
        """Deletes the uploaded files no source is recorded for: nothing in the uploads folder outlives an ingest
        that did not take it."""
        root = self.uploads_dir.resolve()
        recorded = {r.source for r in self.kb.sources(f"{root}{os.sep}")}
        for path in paths:
            if str(path) not in recorded and path.parent == root:
                path.unlink(missing_ok=True)

    def ingest_paths(
        self,
        paths: list[Path],
        urls: list[str],
        crawl: int = 0,
        doc_type: str | None = None,
        progress: Progress | None = None,
        kb: str | None = None,
    ) -> IngestReport:
        """Into knowledge base `kb` (a name; None: the default)."""
        with self._write_lock:
            target = self.knowledge_base(kb)
            return self.parts.ingest(paths, urls, kb=target, crawl=crawl, doc_type=doc_type, progress=progress)

    def sources(self, kb: str | None = None) -> list[SourceRecord]:
        """The sources of knowledge base `kb` (a name; None: the default)."""
        return self.knowledge_base(kb).sources()

    def display_names(self) -> dict[str, str]:
        """Source → what its user calls it (relative to its ingest folder, or its URL); absolute paths stay in the
        API and on hover."""
        return self.kb.display_names()

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

    def reingest(self, sources: list[str], progress: Progress | None = None) -> IngestReport:
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

    def search(self, query: str, k: int, mode: Mode) -> list[Document]:
        return self.kb.search(query, k=k, options=self._options(mode))

    def _options(self, mode: Mode) -> SearchOptions:
        """The knowledge base's search options with this session's retrieval mode."""
        return replace(self.kb.default_options(), mode=mode)

    def stats(self) -> Mapping[str, object]:
        return self.kb.stats()

    # ---- evaluation ------------------------------------------------------------------------------

    def evaluate(
        self, path: Path, k: int, mode: Mode, on_question: Callable[[int, int, QuestionResult], None] | None = None
    ) -> QuestionSetResult:
        questions = [q for q in load_questions(path) if q.answerable]
        total = len(questions)
        done = 0

        def step(result: QuestionResult) -> None:
            nonlocal done
            done += 1
            if on_question:
                on_question(done, total, result)

        return evaluate_questions(self.kb, questions, k, self._options(mode), on_question=step)

    def evaluate_answers(
        self,
        path: Path,
        models: list[str],
        judge: str | None = None,
        per_category: int | None = None,
        on_row: Callable[[AnswerRow, int, int], None] | None = None,
        choices: SessionChoices | None = None,
    ) -> AnswersRun:
        """Every model answers the sampled questions as chat would answer them: only models the app's policy
        allows, each question in a fresh thread (deleted after: the run leaves no conversations), and a local
        model's lock taken per question, so chat waits at most for the answer in progress. Raises UserError for
        a model or judge that can't be used, ValueError for a file that is not a question set."""
        wanted = list(dict.fromkeys(m.strip() for m in models if m and m.strip()))
        if not wanted:
            raise UserError("pick one or more models to evaluate")
        questions = sample(load_answer_set(path), per_category)
        if not questions:
            raise UserError(f"{path.name} has no questions")
        base = choices or self.default_choices()
        agents = {a.spec.label: a for a in (self._usable_agent(replace(base, model=m)) for m in wanted)}
        grader = None
        if judge and judge.strip():
            judging = self._usable_agent(replace(base, model=judge.strip()))
            turn = self._model_lock(judging) or contextlib.nullcontext()
            grader = Judge(_TakingTurns(judging.model_at(0.0), turn), judging.spec.label)
        run = AnswersRun([])
        streams = {label: self._answers_stream(agent, run.cited, base) for label, agent in agents.items()}
        run.rows = run_answers(streams, questions, None, grader, on_row, self.settings.eval.usd)
        return run

    def _usable_agent(self, choices: SessionChoices) -> Agent:
        """`agent`, with whatever stops one being built (the policy, a missing key or file) as one UserError line."""
        try:
            return self.agent(choices)
        except Exception as exc:
            raise UserError(f"the model {choices.model!r} can't be used: {_first_line(exc)}") from exc

    def _answers_stream(
        self, agent: Agent, cited: dict[tuple[str, str], list[Passage]], choices: SessionChoices
    ) -> Callable[[str], Iterator[Event]]:
        """One question's events from `agent` in a thread of its own, deleted when the answer is done; the lock
        is held for that one answer only (the run reads the events here: no network write in between)."""

        def stream(question: str) -> Iterator[Event]:
            thread_id = self.threads.new_thread()
            try:
                for event in self._in_turn(agent, question, thread_id, choices, None):
                    if isinstance(event, Sources):
                        cited[(agent.spec.label, question)] = list(event.cited)
                    yield event
            finally:
                self.threads.delete(thread_id)

        return stream


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
