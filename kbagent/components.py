"""The composition root: the one place that turns settings into built parts.

The CLI, the app, the evaluator and the benchmarks all start here; no constructor builds its own
dependencies. Parts are built on first use (a `kbagent search` never loads the chat model or the web
fetcher) and closed together. Tests pass their own embedder or a scripted chat model through the same seam.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kbagent.errors import ConfigError, UserError
from kbagent.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from agent.memory import Threads
    from agent.models import ModelFactory
    from agent.runner import Agent
    from ingest import Ingestor, IngestReport, Progress
    from ingest.web import WebFetcher
    from knowledge_base import KnowledgeBase
    from knowledge_base.config import Mode
    from knowledge_base.embeddings import Embedder
    from tools.mcp_client import McpHub
    from tools.web_search import WebSearch
    from viewer.service import SourceViewer


def open_knowledge_base(settings: Settings, embedder: Embedder | None = None) -> KnowledgeBase:
    """The knowledge base of `settings`: its embedder (unless given), Chroma client, re-ranker, and where its
    records, keyword index and ingest lock live (the data dir's SQLite files, or PostgreSQL)."""
    from knowledge_base import KnowledgeBase
    from knowledge_base.backend import open_backend
    from knowledge_base.chroma import open_client
    from knowledge_base.embeddings import build_embedder
    from knowledge_base.reranker import build_reranker

    if embedder is None:
        keys = settings.keys
        embedder = build_embedder(
            settings.embedding,
            settings.store.models_path,
            keys.secret("openai_api_key"),
            keys.openai_base_url,
            settings.store.calibration_path,
        )
    reranker = build_reranker(settings.search, settings.embedding.device)
    client = open_client(settings.store)
    backend = open_backend(settings.store, settings.search)
    return KnowledgeBase(settings.store, settings.search, embedder, client, backend, reranker)


def migrate(
    settings: Settings,
    to: str,
    chroma_url: str | None = None,
    embedder: Embedder | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """`kbagent migrate`: this embedded data dir's records, keyword index and threads into the PostgreSQL
    database `to`, and its vectors into the Chroma server `chroma_url` where one is given. Idempotent."""
    from pydantic import ValidationError

    from agent.memory import PostgresThreadStore, ThreadStore, copy_threads
    from kbagent.settings import describe_error
    from knowledge_base.migrate import copy_knowledge_base

    if settings.store.database_url.get_secret_value():
        raise UserError("migrate copies an embedded data dir: unset KBAGENT_DATABASE_URL and name the target in --to")
    if not settings.store.records_path.exists():
        raise UserError(f"no knowledge base to migrate in {settings.store.data_dir} (set KBAGENT_DATA_DIR)")
    try:
        target_settings = settings.override(database_url=to, chroma_url=chroma_url)
    except ValidationError as exc:
        raise UserError(describe_error(exc).replace("KBAGENT_DATABASE_URL", "--to")) from None
    moves_vectors = bool(chroma_url) and chroma_url != settings.store.chroma_url
    with (
        open_knowledge_base(settings, embedder) as source,
        open_knowledge_base(target_settings, source.embedder) as target,
    ):
        copied = copy_knowledge_base(source, target, moves_vectors, on_progress)
    threads = already = 0
    if settings.threads_path.exists():
        local, shared = ThreadStore(settings.threads_path), PostgresThreadStore(to, settings.store.collection)
        try:
            threads, already = copy_threads(local, shared)
        finally:
            local.close()
            shared.close()
    return {
        "sources_copied": copied.sources,
        "sources_already_there": copied.sources_present,
        "keyword_rows_copied": copied.keyword_rows,
        "vectors_copied": copied.vectors,
        "vectors_already_there": copied.vectors_present,
        "threads_copied": threads,
        "threads_already_there": already,
    }


def keep_audit_log(path: Path) -> None:
    """The `kbagent.audit` log (each outside tool call: who, when, which tool, argument size, outcome) appended to
    `path`, apart from the terminal's warnings; once per file in a process."""
    audit = logging.getLogger("kbagent.audit")
    target = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == target for h in audit.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False  # not on the terminal's stderr with every answer


class Components:
    """Every part of kbagent, built from one `Settings`. Use as a context manager: closing closes what was built.

    `embedder` and `chat_model` replace the configured ones (tests, benchmarks, a second store that shares the
    first one's loaded embedder); with `chat_model`, every agent answers with it whatever model it names.
    `threads_path` keeps conversations in that SQLite file (the evaluator's questions stay out of the user's list);
    otherwise they live beside the records: in the data dir, or in PostgreSQL (`KBAGENT_DATABASE_URL`).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        chat_model: Any | None = None,
        threads_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._chat_model = chat_model
        self._threads_path = threads_path

    def __enter__(self) -> Components:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        built = self.__dict__
        if "fetcher" in built:
            built["fetcher"].close()
        if built.get("web_search") is not None:
            built["web_search"].close()
        if built.get("mcp") is not None:
            built["mcp"].close()
        if "threads" in built:
            built["threads"].close()
        if "kb" in built:
            built["kb"].close()

    @cached_property
    def kb(self) -> KnowledgeBase:
        return open_knowledge_base(self.settings, self._embedder)

    @cached_property
    def threads(self) -> Threads:
        from agent.memory import PostgresThreadStore, ThreadStore

        url = self.settings.store.database_url.get_secret_value()
        if url and self._threads_path is None:
            return PostgresThreadStore(url, self.settings.store.collection)
        return ThreadStore(self._threads_path or self.settings.threads_path)

    @cached_property
    def fetcher(self) -> WebFetcher:
        """One guarded fetcher (and at most one browser) for every page ingested or scraped in this process."""
        from ingest.web import FetchError, WebFetcher

        try:
            return WebFetcher(self.settings.web)
        except FetchError as exc:  # a bad KBAGENT_ALLOW_HOSTS entry
            raise ConfigError(str(exc)) from exc

    @cached_property
    def scraper(self) -> Callable[[str], str]:
        from tools.scraper import make_scraper

        return make_scraper(self.fetcher)

    @cached_property
    def web_search(self) -> WebSearch | None:
        """The configured web search provider (KBAGENT_WEB_SEARCH), None when off; a missing key is a ConfigError."""
        from tools.web_search import make_web_search

        return make_web_search(self.settings.tools, self.settings.search_keys)

    @cached_property
    def mcp(self) -> McpHub | None:
        """The outside MCP servers (KBAGENT_MCP_SERVERS), started (`problems`: one line per server left out), None
        when unset; stdio servers' stderr goes to DATA_DIR/logs."""
        from tools.mcp_client import start_mcp

        return start_mcp(self.settings.tools, self.settings.store.data_dir / "logs")

    @cached_property
    def mcp_tools(self) -> list[Any]:
        """The outside servers' tools their allow-lists let through, built once (the servers start on first use);
        each tool held back, and each server that did not start, is logged once."""
        from tools.mcp_client import make_mcp_tools

        if self.mcp is None:
            return []
        keep_audit_log(self.settings.store.data_dir / "logs" / "audit.log")
        tools, notes = make_mcp_tools(self.mcp)
        for note in [*self.mcp.problems, *notes]:
            log.warning("%s", note)
        return tools

    @cached_property
    def models(self) -> ModelFactory:
        from agent.models import ModelFactory

        return ModelFactory(self.settings.agent, self.settings.keys, self.settings.store.models_path)

    def viewer(self, runner: Any | None = None) -> SourceViewer:
        """Views of the knowledge base's cited passages (`viewer.service`), drawn and parsed in a worker process
        under the viewer's limits (`runner`: another, e.g. `InProcess` for a test); close its runner when done."""
        from ingest.read import ReadSettings
        from ingest.workers import Limits, ReadWorkers
        from viewer.service import SourceViewer

        config = self.settings.viewer
        runner = runner or ReadWorkers(ReadSettings(), 1, Limits(config.view_memory_mb, config.view_timeout_s))
        ingest = self.settings.ingest
        max_bytes = int(ingest.max_file_mb * 2**20)
        return SourceViewer(self.kb, runner, config, ingest.chunking.fingerprint, max_bytes)

    def ingestor(self) -> Ingestor:
        from ingest import build_ingestor

        return build_ingestor(self.settings.ingest, self.kb)

    def ingest(
        self,
        paths: Sequence[Path] = (),
        urls: Sequence[str] = (),
        *,
        sitemaps: Sequence[str] = (),
        progress: Progress | None = None,
        **options: Any,
    ) -> IngestReport:
        """Files and folders through the pipeline, pages through the guarded fetcher, one report: what
        `kbagent ingest` and the app's Knowledge base tab both run. `options`: `doc_type`, and for files
        `globs`, `excludes`, `sync`; for pages `crawl`, `max_pages`, `render`."""
        from ingest.web import combine, ingest_web

        file_options = {k: options[k] for k in ("globs", "excludes", "sync") if k in options}
        web_options = {k: options[k] for k in ("crawl", "max_pages", "render") if k in options}
        doc_type = options.get("doc_type")
        ingestor = self.ingestor()
        reports = []
        if paths:
            reports.append(ingestor.run(list(paths), doc_type=doc_type, progress=progress, **file_options))
        if urls or sitemaps:
            reports.append(
                ingest_web(
                    ingestor,
                    self.fetcher,
                    list(urls),
                    sitemaps=list(sitemaps),
                    doc_type=doc_type,
                    progress=progress,
                    **web_options,
                )
            )
        return combine(*reports)

    def warm_up(self, model: Any) -> None:
        """Has a local chat model read the fixed system prompt once, so llama.cpp keeps it in its cache and the
        first question reads only what follows it (the model itself loaded when it was built)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        from agent import prompts

        model.invoke([SystemMessage(prompts.RETRIEVAL_FIRST), HumanMessage("Hello")], max_tokens=1)

    def agent(
        self,
        model: str | None = None,
        *,
        k: int | None = None,
        mode: Mode | None = None,
        temperature: float | None = None,
        chat_model: Any | None = None,
    ) -> Agent:
        """An agent on `model` (None: the configured one), with this session's k, retrieval mode and temperature.
        `chat_model`: that model already built (another agent's), so it is not built again."""
        from dataclasses import replace

        from agent.models import parse_model, uses_tool_calling
        from agent.runner import Agent

        spec = parse_model(self.settings.agent.model if model is None else model)
        config = self.settings.agent
        changes = {"k": k, "temperature": temperature}
        config = config.model_copy(update={key: v for key, v in changes.items() if v is not None})
        chat_model = self._chat_model or chat_model or self.models.build(spec, config.temperature)
        options = self.kb.default_options()
        if mode is not None:
            options = replace(options, mode=mode)
        outside = self.mcp_tools if uses_tool_calling(config, spec) else []  # the local loop calls none
        return Agent(
            config,
            self.kb,
            chat_model,
            spec,
            self.threads,
            scraper=self.scraper,
            search_options=options,
            web_search=self.web_search,
            outside_tools=outside,
        )
