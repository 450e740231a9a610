"""The composition root: the one place that turns settings into built parts.

The CLI, the app, the evaluator and the benchmarks all start here; no constructor builds its own
dependencies. Parts are built on first use (a `kbagent search` never loads the chat model or the web
fetcher) and closed together. Tests pass their own embedder or a scripted chat model through the same seam.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from kbagent.errors import ConfigError, UnknownKnowledgeBase, UserError
from kbagent.settings import Settings
from knowledge_base.catalog import Catalog, KbInfo, check_name
from knowledge_base.config import StoreConfig

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

    from agent.config import AgentConfig
    from agent.memory import PostgresThreadStore, Threads, ThreadStore
    from agent.models import ModelFactory, ModelSpec
    from agent.runner import Agent
    from ingest import Ingestor, IngestReport, Progress
    from ingest.web import WebFetcher
    from knowledge_base import KnowledgeBase
    from knowledge_base.backend import Place
    from knowledge_base.config import Mode
    from knowledge_base.embeddings import Embedder
    from knowledge_base.reranker import CrossEncoderReranker
    from tools.mcp_client import McpHub
    from tools.web_search import WebSearch
    from viewer.service import Runner, SourceViewer


CHUNKING_FIELDS = ("chunk_size", "chunk_overlap")
"""The ingest settings a knowledge base keeps from its creation (`KbInfo.chunking`): changing them later applies
to new knowledge bases and never re-chunks (so re-embeds) an existing one."""
OVERRIDES = {"instructions": "instructions", "model": "model", "k": "agent_k", "mode": "search_mode"}
OVERRIDES["min_score"] = "search_min_score"
"""A knowledge base's own settings (`kbagent kb set NAME KEY VALUE`) → the global settings they override."""


def open_catalog(store: StoreConfig) -> Catalog:
    """The data dir's catalog of knowledge bases: DATA_DIR/kbagent.sqlite3, or PostgreSQL's global schema."""
    from knowledge_base.catalog import PostgresCatalog, SqliteCatalog

    url = store.database_url.get_secret_value()
    return PostgresCatalog(url) if url else SqliteCatalog(store.catalog_path)


def build_embedder_for(settings: Settings) -> Embedder:
    from knowledge_base.embeddings import build_embedder

    keys = settings.keys
    return build_embedder(
        settings.embedding,
        settings.store.models_path,
        keys.secret("openai_api_key"),
        keys.openai_base_url,
        settings.store.calibration_path,
    )


def open_knowledge_base(settings: Settings, embedder: Embedder | None = None) -> KnowledgeBase:
    """The knowledge base `settings` name on their own (KBAGENT_COLLECTION's, in the data dir), outside any catalog:
    its embedder (unless given), Chroma client, re-ranker, and where its records, keyword index and ingest lock
    live (the data dir's SQLite files, or PostgreSQL). Tests and benchmarks open stores this way; `Components`
    opens knowledge bases by name."""
    from knowledge_base.chroma import open_client
    from knowledge_base.reranker import build_reranker

    reranker = build_reranker(settings.search, settings.embedding.device)
    return assemble(settings, embedder or build_embedder_for(settings), open_client(settings.store), reranker)


def assemble(
    settings: Settings,
    embedder: Embedder,
    client: ClientAPI,
    reranker: CrossEncoderReranker | None,
    place: Place | None = None,
    name: str = "",
    alive: Callable[[], bool] | None = None,
) -> KnowledgeBase:
    """A knowledge base from its built parts (see `KnowledgeBase`)."""
    from knowledge_base import KnowledgeBase
    from knowledge_base.backend import open_backend

    backend = open_backend(settings.store, settings.search, place)
    return KnowledgeBase(
        settings.store, settings.search, embedder, client, backend, reranker, place=place, name=name, alive=alive
    )


def migrate(
    settings: Settings,
    to: str,
    chroma_url: str | None = None,
    embedder: Embedder | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    kb: str | None = None,
) -> dict[str, int]:
    """`kbagent migrate`: this embedded data dir's knowledge bases (or the one named `kb`) into the PostgreSQL
    database `to`: their catalog entries, records, keyword indexes and conversations, and their vectors into the
    Chroma server `chroma_url` where one is given. Idempotent."""
    from pydantic import ValidationError

    from agent.memory import PostgresThreadStore, copy_threads
    from kbagent.settings import describe_error
    from knowledge_base.catalog import GLOBAL_SCHEMA
    from knowledge_base.migrate import Copied, copy_knowledge_base

    if settings.store.database_url.get_secret_value():
        raise UserError("migrate copies an embedded data dir: unset KBAGENT_DATABASE_URL and name the target in --to")
    from knowledge_base.backend import Place

    if not settings.store.catalog_path.exists() and not Place.of(settings.store).records_path.exists():
        raise UserError(f"no knowledge base to migrate in {settings.store.data_dir} (set KBAGENT_DATA_DIR)")
    try:
        target_settings = settings.override(database_url=to, chroma_url=chroma_url)
    except ValidationError as exc:
        raise UserError(describe_error(exc).replace("KBAGENT_DATABASE_URL", "--to")) from None
    moves_vectors = bool(chroma_url) and chroma_url != settings.store.chroma_url
    copied, threads, already = Copied(), 0, 0
    with Components(settings, embedder) as here, Components(target_settings, embedder) as there:
        infos = [here.kb_info(kb)] if kb else [here.kb_info(None), *here.catalog.all()]
        for info in {i.id: i for i in infos}.values():
            source = here.knowledge_base(info)
            there._embedders.setdefault(info.embedding_model, source.embedder)
            target = there.knowledge_base(there.catalog.register(info))
            copy_knowledge_base(source, target, moves_vectors, on_progress, copied)
        if settings.threads_path.exists():
            shared = PostgresThreadStore(to, GLOBAL_SCHEMA)
            try:
                threads, already = copy_threads(here.threads, shared, here.kb_info(kb).id if kb else None)
            finally:
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

    Knowledge bases are opened by name (`knowledge_base`), once each; those with one embedding model share its
    loaded embedder, and all share one Chroma client. Each opens with its own settings (`kb_settings`): the global
    ones, overridden where it sets its own. `kb` is the default one (KBAGENT_KB).

    `embedder` and `chat_model` replace the configured ones (tests, benchmarks, a second store that shares the
    first one's loaded embedder); with `chat_model`, every agent answers with it whatever model it names.
    `threads_path` keeps conversations in that SQLite file (the evaluator's questions stay out of the user's list);
    otherwise they live in the data dir's one thread store: in the data dir, or in PostgreSQL (`KBAGENT_DATABASE_URL`).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        chat_model: BaseChatModel | None = None,
        threads_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self._chat_model = chat_model
        self._threads_path = threads_path
        self._embedders: dict[str, Embedder] = {settings.embedding.model: embedder} if embedder else {}
        self._opened: dict[str, KnowledgeBase] = {}
        self._opening = threading.RLock()  # the app's sessions open knowledge bases from several threads

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
        for kb in self._opened.values():
            kb.close()
        self._opened.clear()
        if "catalog" in built:
            built["catalog"].close()

    # ---- knowledge bases ---------------------------------------------------------------------------------

    @cached_property
    def catalog(self) -> Catalog:
        return open_catalog(self.settings.store)

    @cached_property
    def chroma(self) -> ClientAPI:
        """The one Chroma client every knowledge base of this data dir uses."""
        from knowledge_base.chroma import open_client

        return open_client(self.settings.store)

    @cached_property
    def reranker(self) -> CrossEncoderReranker | None:
        from knowledge_base.reranker import build_reranker

        return build_reranker(self.settings.search, self.settings.embedding.device)

    @property
    def kb(self) -> KnowledgeBase:
        """The default knowledge base (KBAGENT_KB)."""
        return self.knowledge_base(None)

    def embedder(self, model: str) -> Embedder:
        """The embedder of `model`, loaded once for every knowledge base that embeds with it."""
        with self._opening:
            if model not in self._embedders:
                self._embedders[model] = build_embedder_for(self.settings.override(embedding_model=model))
            return self._embedders[model]

    def kb_info(self, name: str | None = None) -> KbInfo:
        """The knowledge base of that name (or id); None: the default one. UnknownKnowledgeBase when none has it."""
        if name is None:
            return self._default_info()
        found = self.catalog.find(name)
        if found is None:
            raise UnknownKnowledgeBase(f"no knowledge base named {name!r} (`kbagent kb list` shows them)")
        return found

    def kb_settings(self, info: KbInfo) -> Settings:
        """The settings a knowledge base runs with: the global ones, with its own where it sets them, and the
        chunking and embedding model it was made with."""
        flat = {OVERRIDES[key]: value for key, value in info.overrides.items() if key in OVERRIDES}
        fixed = {key: info.chunking[key] for key in CHUNKING_FIELDS if key in info.chunking}
        return self.settings.override(**flat, **fixed, embedding_model=info.embedding_model)

    def knowledge_base(self, kb: str | KbInfo | None = None) -> KnowledgeBase:
        """A knowledge base by name (None: the default), opened on first use and kept open."""
        from knowledge_base.backend import Place

        info = kb if isinstance(kb, KbInfo) else self.kb_info(kb)
        with self._opening:
            opened = self._opened.get(info.id)
            if opened is None:
                settings = self.kb_settings(info)
                place = Place(info.id, info.path(self.settings.store.data_dir))
                alive = partial(self.catalog.alive, info.id)
                embedder = self.embedder(info.embedding_model)
                opened = assemble(settings, embedder, self.chroma, self.reranker, place, info.name, alive)
                self._opened[info.id] = opened
            opened.name = info.name
            return opened

    def info_of(self, kb: KnowledgeBase) -> KbInfo:
        """An opened knowledge base's catalog entry (UnknownKnowledgeBase once it is deleted)."""
        info = self.catalog.get(kb.id)
        if info is None:
            raise UnknownKnowledgeBase(f"the knowledge base {kb.name!r} was deleted")
        return info

    def _target(self, kb: KnowledgeBase | str | None) -> KnowledgeBase:
        return self.knowledge_base(kb) if kb is None or isinstance(kb, str) else kb

    def forget(self, kb_id: str) -> None:
        """Closes a knowledge base this process opened (it was deleted)."""
        with self._opening:
            opened = self._opened.pop(kb_id, None)
        if opened is not None:
            opened.close()

    def _default_info(self) -> KbInfo:
        """KBAGENT_KB's knowledge base; unset, the one KBAGENT_COLLECTION names (by name, else by collection).
        A data dir that has none yet gets it now: the one its files already hold, registered where they are."""
        store = self.settings.store
        found = self.catalog.find(store.kb or store.collection)
        if found is not None:
            return found
        if store.kb and self.catalog.all():
            raise UnknownKnowledgeBase(
                f"no knowledge base named {store.kb!r} (KBAGENT_KB; `kbagent kb list` shows them)"
            )
        return self._register_existing(check_name(store.kb or store.collection), store.collection)

    def _register_existing(self, name: str, collection: str) -> KbInfo:
        """The data dir's existing knowledge base (or a new, empty one) into the catalog, nothing moved or embedded:
        its collection, its records where they are, the embedding model its collection was built with, today's
        chunking. Then its conversations become its own (`_adopt_threads`). Each step is whole or not done, and
        done again at the next start until it is: an interrupted migration resumes."""
        from knowledge_base.catalog import GLOBAL_SCHEMA, LEGACY_FOLDER

        if collection == GLOBAL_SCHEMA:
            raise ConfigError(f"KBAGENT_COLLECTION may not be {GLOBAL_SCHEMA!r}: the catalog's schema has that name")
        built_with = {c.name: (c.metadata or {}).get("embedding_model") for c in self.chroma.list_collections()}
        info = KbInfo(
            id=collection,
            name=name,
            folder=LEGACY_FOLDER if not self.catalog.folder_taken(LEGACY_FOLDER) else f"kbs/{collection}",
            embedding_model=built_with.get(collection) or self.settings.embedding.model,
            chunking={key: getattr(self.settings.ingest, key) for key in CHUNKING_FIELDS},
        )
        info = self.catalog.register(info)
        if "threads" in self.__dict__:
            self._adopt_threads(self.__dict__["threads"])
        return info

    def _adopt_threads(self, threads: ThreadStore | PostgresThreadStore) -> None:
        """Conversations from before knowledge bases become theirs: in SQLite, the data dir's first knowledge
        base's; in PostgreSQL, each knowledge base's whose schema held some (moved to the global schema)."""
        from knowledge_base.catalog import LEGACY_FOLDER

        known = self.catalog.all()
        if self.settings.store.database_url.get_secret_value():
            for info in known:
                threads.adopt(info.id)
            return
        first = next((info for info in known if info.folder == LEGACY_FOLDER), None)
        if first is not None:
            threads.adopt(first.id)

    @cached_property
    def threads(self) -> Threads:
        from agent.memory import PostgresThreadStore, ThreadStore
        from knowledge_base.catalog import GLOBAL_SCHEMA

        if self._threads_path is not None:
            return ThreadStore(self._threads_path)
        url = self.settings.store.database_url.get_secret_value()
        store: ThreadStore | PostgresThreadStore = (
            PostgresThreadStore(url, GLOBAL_SCHEMA) if url else ThreadStore(self.settings.threads_path)
        )
        try:
            self._adopt_threads(store)
        except BaseException:  # interrupted: not cached, so `close` would not see it
            store.close()
            raise
        return store

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
    def mcp_tools(self) -> list[BaseTool]:
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

    def viewer(self, runner: Runner | None = None, kb: KnowledgeBase | str | None = None) -> SourceViewer:
        """Views of `kb`'s cited passages (None: the default's; `viewer.service`), drawn and parsed in a worker
        process under the viewer's limits (`runner`: another, e.g. `InProcess` for a test); close its runner when
        done."""
        from ingest.read import ReadSettings
        from ingest.workers import Limits, ReadWorkers
        from viewer.service import SourceViewer

        config = self.settings.viewer
        runner = runner or ReadWorkers(ReadSettings(), 1, Limits(config.view_memory_mb, config.view_timeout_s))
        target = self._target(kb)
        ingest = self.kb_settings(self.info_of(target)).ingest
        max_bytes = int(ingest.max_file_mb * 2**20)
        return SourceViewer(target, runner, config, ingest.chunking.fingerprint, max_bytes)

    def ingestor(self, kb: KnowledgeBase | str | None = None) -> Ingestor:
        """An ingestor into `kb` (a name, an opened one, None: the default), chunking as it was made to."""
        from ingest import build_ingestor

        target = self._target(kb)
        return build_ingestor(self.kb_settings(self.info_of(target)).ingest, target)

    def ingest(
        self,
        paths: Sequence[Path] = (),
        urls: Sequence[str] = (),
        *,
        kb: KnowledgeBase | str | None = None,
        sitemaps: Sequence[str] = (),
        progress: Progress | None = None,
        doc_type: str | None = None,
        globs: list[str] | None = None,
        excludes: list[str] | None = None,
        sync: bool = False,
        crawl: int = 0,
        max_pages: int = 50,
        render: bool | None = None,
    ) -> IngestReport:
        """Files and folders through the pipeline, pages through the guarded fetcher, into `kb` (None: the default),
        one report: what `kbagent ingest` and the app's Knowledge base tab both run. `globs`, `excludes` and `sync`
        apply to files; `crawl`, `max_pages` and `render` to pages."""
        from ingest.web import combine, ingest_web

        ingestor = self.ingestor(kb)
        reports = []
        if paths:
            reports.append(
                ingestor.run(
                    list(paths), doc_type=doc_type, progress=progress, globs=globs, excludes=excludes, sync=sync
                )
            )
        if urls or sitemaps:
            reports.append(
                ingest_web(
                    ingestor,
                    self.fetcher,
                    list(urls),
                    sitemaps=list(sitemaps),
                    doc_type=doc_type,
                    progress=progress,
                    crawl=crawl,
                    max_pages=max_pages,
                    render=render,
                )
            )
        return combine(*reports)

    def warm_up(self, model: BaseChatModel) -> None:
        """Has a local chat model read the fixed system prompt once, so llama.cpp keeps it in its cache and the
        first question reads only what follows it (the model itself loaded when it was built)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        from agent import prompts

        model.invoke([SystemMessage(prompts.RETRIEVAL_FIRST), HumanMessage("Hello")], max_tokens=1)

    def chat_model(self, model: str | None = None, *, kb: KbInfo) -> BaseChatModel:
        """The chat model `agent(model, kb=...)` would build for that knowledge base: built ahead (a one-shot
        `kbagent ask` builds it on another thread, before the store is even opened) and handed to `agent`."""
        config, spec = self._agent_config(kb, model)
        return self._chat_model or self.models.build(spec, config.temperature)

    def _agent_config(
        self, info: KbInfo, model: str | None, k: int | None = None, temperature: float | None = None
    ) -> tuple[AgentConfig, ModelSpec]:
        """An agent's settings on a knowledge base (its own, else the global ones; `k` and `temperature` where
        given) and the model it answers with."""
        from agent.models import parse_model

        config = self.kb_settings(info).agent
        spec = parse_model(config.model if model is None else model)
        changes = {"k": k, "temperature": temperature}
        return config.model_copy(update={key: v for key, v in changes.items() if v is not None}), spec

    def agent(
        self,
        model: str | None = None,
        *,
        kb: KnowledgeBase | str | None = None,
        k: int | None = None,
        mode: Mode | None = None,
        temperature: float | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> Agent:
        """An agent answering from `kb` (None: the default) on `model` (None: the knowledge base's, else the
        configured one), with this session's k, retrieval mode and temperature where given, else the knowledge
        base's own settings, else the global ones. `chat_model`: that model already built (another agent's), so it
        is not built again."""
        from dataclasses import replace

        from agent.models import uses_tool_calling
        from agent.runner import Agent

        target = self._target(kb)
        config, spec = self._agent_config(self.info_of(target), model, k=k, temperature=temperature)
        chat_model = self._chat_model or chat_model or self.models.build(spec, config.temperature)
        options = target.default_options()
        if mode is not None:
            options = replace(options, mode=mode)
        outside = self.mcp_tools if uses_tool_calling(config, spec) else []  # the local loop calls none
        return Agent(
            config,
            target,
            chat_model,
            spec,
            self.threads,
            scraper=self.scraper,
            search_options=options,
            web_search=self.web_search,
            outside_tools=outside,
        )
