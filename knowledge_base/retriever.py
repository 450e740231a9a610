"""The knowledge base as a LangChain `BaseRetriever`, so it drops into any LCEL chain or LangChain tool."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, SkipValidation

from knowledge_base.config import Mode
from knowledge_base.retrieval import MODES, Filters, SearchOptions

MAX_K = 100


class Searchable(Protocol):
    """What the retriever uses of a `KnowledgeBase` (which imports this module, so it is not named here)."""

    def default_options(self) -> SearchOptions: ...

    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, options: SearchOptions | None = None
    ) -> list[Document]: ...


class KnowledgeBaseRetriever(BaseRetriever):
    """`KnowledgeBase.search` behind LangChain's retriever interface (sync; async runs it in a worker thread).

    Each Document carries the chunk's metadata (source, title, doc_type, page, section, …) and its scores:
    `score` (the mode's own), `similarity` (cosine) and `bm25` where computed, `chunk_id`. `k`, `mode` and
    `filters` given to `invoke` override the retriever's own for that call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kb: SkipValidation[Searchable] = Field(exclude=True)  # a KnowledgeBase; pydantic cannot check a protocol
    k: int = Field(4, ge=1, le=MAX_K)
    mode: Mode | None = None  # None: the knowledge base's configured mode
    filters: Filters = Field(default_factory=dict)  # doc_type, source_prefix or any metadata equality

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k = max(1, min(int(kwargs.get("k", self.k)), MAX_K))
        mode = kwargs.get("mode", self.mode)
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        filters = {**self.filters, **(kwargs.get("filters") or {})}
        options = self.kb.default_options()
        if mode is not None:
            options = replace(options, mode=mode)
        return list(self.kb.search(query, k=k, filters=filters, options=options))
