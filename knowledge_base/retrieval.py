"""Hybrid search: how the dense and keyword indexes' candidates become the few chunks shown.

`HybridSearch.search` reads as its steps: plan, keyword (started first, in a thread), dense, fuse,
hydrate (read and filter only what will be shown), rerank, diversify.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, get_args

from langchain_core.documents import Document

from knowledge_base.config import Mode

if TYPE_CHECKING:
    from knowledge_base.backend import KeywordSearch, RecordStore
    from knowledge_base.embeddings import Embedder
    from knowledge_base.keyword_index import KeywordHit
    from knowledge_base.reranker import CrossEncoderReranker

MODES: tuple[str, ...] = get_args(Mode)
RRF_K = 60
MIN_POOL = 40  # candidates per index at least, however small k is
MIN_WINDOW = 8  # hits read at a time when filters drop some of the top k
log = logging.getLogger(__name__)

MetaValue = str | int | float | bool | None
"""A chunk's metadata value, as Chroma stores it."""
Filters = dict[str, MetaValue]
"""Metadata equalities a search keeps to (doc_type, source_prefix, ...); None or "" means any value."""


@dataclass
class SearchOptions:
    mode: Mode = "hybrid"
    mmr: bool = False
    mmr_lambda: float = 0.7
    min_score: float | None = None
    candidates: int | None = None  # per index; default max(4k, 40)
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    rerank: bool = True  # only when a re-ranker is configured
    similarity: bool = False  # every result's cosine similarity to the query, keyword mode too (relevance floors)


@dataclass
class Hit:
    """One chunk either index found; its text and metadata are read only if it may be shown."""

    chunk_id: str
    fused: float = 0.0
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None  # cosine similarity
    keyword_score: float | None = None  # BM25
    text: str = ""
    metadata: dict[str, MetaValue] = field(default_factory=dict)
    embedding: Sequence[float] | None = None
    rerank_score: float | None = None
    dropped: bool = False  # its text or its vector is gone (or unreadable): never shown


@dataclass(frozen=True)
class Plan:
    """What one search asks of each index, decided before either is asked."""

    query: str
    k: int
    options: SearchOptions
    mode: Mode  # the options' mode, or "keyword" once the dense index has failed
    pool: int  # candidates per index
    filters: Filters  # metadata equalities, doc_type among them
    sources: list[str] | None  # the source prefix's sources; None: any
    rerank: bool

    @property
    def keyword_pool(self) -> int:
        # Filters other than doc_type are applied after the keyword search: ask for more to keep k after them.
        other = any(key != "doc_type" and value not in (None, "") for key, value in self.filters.items())
        return self.pool * 4 if other else self.pool


class HybridSearch:
    """Dense and keyword search fused into one ranking; the knowledge base builds and owns what it uses."""

    def __init__(
        self,
        collection: Any,  # a chromadb Collection: its reads' types are optional everywhere, checked by use
        keywords: KeywordSearch,
        embedder: Embedder,
        reranker: CrossEncoderReranker | None,
        executor: Executor,
        records: RecordStore,
    ) -> None:
        self.collection = collection
        self.keywords = keywords
        self.embedder = embedder
        self.reranker = reranker
        self.executor = executor
        self.records = records

    def search(self, query: str, k: int, filters: Filters | None, options: SearchOptions) -> list[Document]:
        """Top-k chunks, best first; see `KnowledgeBase.search`."""
        plan = self.plan(query, k, filters, options)
        if plan is None:
            return []
        # The keyword index (SQLite releases the GIL) runs in a thread while the query is embedded and the
        # dense index searched: on a large store that hides the smaller of the two (bench/query_scale.py).
        keyword_job = self.keyword(plan) if plan.mode in ("keyword", "hybrid") else None
        wanted = options.mmr or options.similarity or plan.mode != "keyword"
        vector = self.embedder.embed_query(query) if wanted else None
        hits: dict[str, Hit] = {}
        dense_ids: list[str] = []
        if plan.mode in ("dense", "hybrid"):
            found = self.dense(plan, vector, hits)
            if found is None:  # the keyword index still answers
                plan = replace(plan, mode="keyword")
                keyword_job = keyword_job if keyword_job is not None else self.keyword(plan)
            dense_ids = found or []
        keyword_ids = self._keyword_ranking(keyword_job.result(), hits) if keyword_job is not None else []
        ranked = self.fuse(plan, dense_ids, keyword_ids, hits)
        shown = self.hydrate(plan, ranked, hits, vector)
        if plan.rerank and shown:
            shown = self.rerank(query, shown)
        if options.mmr and vector is not None:
            shown = self.diversify(plan, vector, shown)
        return [to_document(hit) for hit in shown[:k]]

    def plan(self, query: str, k: int, filters: Filters | None, options: SearchOptions) -> Plan | None:
        """None when nothing can match (an empty query, a source prefix no source has): no index is asked."""
        if not query.strip():
            return None
        filters = dict(filters or {})
        sources = None
        if prefix := filters.pop("source_prefix", None):
            sources = [r.source for r in self.records.all(str(prefix))]
            if not sources:
                return None
        pool = options.candidates or max(4 * k, MIN_POOL)
        reranking = self.reranker is not None and options.rerank
        return Plan(query, k, options, options.mode, pool, filters, sources, reranking)

    def keyword(self, plan: Plan) -> Future[list[KeywordHit]]:
        """BM25 search, started in the executor so that it overlaps the dense search."""
        doc_type = plan.filters.get("doc_type")
        doc_type = doc_type if isinstance(doc_type, str) else None  # a doc_type of another type matches none
        return self.executor.submit(self.keywords.search, plan.query, plan.keyword_pool, doc_type, plan.sources)

    @staticmethod
    def _keyword_ranking(found: list[KeywordHit], hits: dict[str, Hit]) -> list[str]:
        for rank, row in enumerate(found, start=1):
            hit = hits.setdefault(row.chunk_id, Hit(row.chunk_id))
            hit.keyword_rank, hit.keyword_score = rank, row.score
        return [row.chunk_id for row in found]

    def dense(self, plan: Plan, vector: Sequence[float] | None, hits: dict[str, Hit]) -> list[str] | None:
        """Nearest chunks, filtered inside Chroma; None when Chroma can't answer, so the keyword index does."""
        where: dict[str, MetaValue | dict[str, list[str]]] = dict(plan.filters)
        if plan.sources is not None:
            where["source"] = {"$in": plan.sources} if len(plan.sources) > 1 else plan.sources[0]
        try:
            result = self.collection.query(
                query_embeddings=[vector],
                n_results=plan.pool,
                where=where_clause(where),
                include=["distances"],  # texts are read later, for the few hits that are shown
            )
        except Exception as exc:  # chromadb's own errors
            log.warning("dense search failed (%s); answering from the keyword index only", str(exc)[:200])
            return None
        ids = result["ids"][0]
        for rank, (chunk_id, distance) in enumerate(zip(ids, result["distances"][0], strict=True), start=1):
            hit = hits.setdefault(chunk_id, Hit(chunk_id))
            hit.dense_rank, hit.dense_score = rank, 1.0 - float(distance)
        return list(ids)

    @staticmethod
    def fuse(plan: Plan, dense_ids: list[str], keyword_ids: list[str], hits: dict[str, Hit]) -> list[str]:
        """The pool, best first. Hybrid mode fuses ranks (RRF): the two indexes' scores aren't comparable."""
        if plan.mode == "hybrid":
            weights = plan.options.dense_weight, plan.options.keyword_weight
            fused = reciprocal_rank_fusion(dense_ids, keyword_ids, *weights)
        elif plan.mode == "dense":
            fused = {i: hits[i].dense_score or 0.0 for i in dense_ids}
        else:
            fused = {i: hits[i].keyword_score or 0.0 for i in keyword_ids}
        ranked = sorted(fused, key=lambda i: -fused[i])[: max(plan.pool, plan.k)]
        for chunk_id in ranked:
            hits[chunk_id].fused = fused[chunk_id]
        return ranked

    def hydrate(self, plan: Plan, ranked: list[str], hits: dict[str, Hit], vector: Sequence[float] | None) -> list[Hit]:
        """The hits that pass the filters, read in ranked order until there are enough.

        Texts are read only for what will be shown: the top k, or the whole pool when MMR or a re-ranker
        still reorders it. Hits a filter drops are replaced from further down the ranking.
        """
        want = len(ranked) if plan.options.mmr or plan.rerank else plan.k
        shown: list[Hit] = []
        start = 0
        while start < len(ranked) and len(shown) < want:
            window = ranked[start : start + max(want - len(shown), MIN_WINDOW)]
            self._read(window, hits, vector)
            shown.extend(hit for hit in (hits[i] for i in window) if _passes(plan, hit))
            start += len(window)
        return shown

    def _read(self, ids: list[str], hits: dict[str, Hit], vector: Sequence[float] | None) -> None:
        """Text, metadata and vector of these hits, and the similarity of those only the keyword index found."""
        missing = [i for i in ids if not hits[i].dropped and not hits[i].metadata]
        if not missing:
            return
        include = ["documents", "metadatas"] + (["embeddings"] if vector is not None else [])
        try:
            got = self.collection.get(ids=missing, include=include)
        except Exception as exc:  # the dense store is unreadable right now: texts come from the keyword index
            log.warning("reading chunks from Chroma failed (%s); using the keyword index's copies", str(exc)[:200])
            self._read_keyword_copies(missing, hits)
            return
        texts = dict(zip(got["ids"], got["documents"], strict=True))
        if textless := [i for i, text in texts.items() if text is None]:
            texts.update((row.chunk_id, row.text) for row in self.keywords.rows(textless))
        embeddings = got.get("embeddings") if vector is not None else None
        found = set()
        for n, chunk_id in enumerate(got["ids"]):
            if texts[chunk_id] is None:  # a vector whose text was never committed: hidden until re-ingested
                continue
            hit = hits[chunk_id]
            hit.text, hit.metadata = texts[chunk_id], dict(got["metadatas"][n] or {})
            if embeddings is not None and vector is not None:
                hit.embedding = embeddings[n]
                if hit.dense_score is None:
                    hit.dense_score = float(sum(a * b for a, b in zip(vector, hit.embedding, strict=True)))
            found.add(chunk_id)
        for chunk_id in set(missing) - found:  # a keyword row without its vector, or a vector without text
            hits[chunk_id].dropped = True

    def _read_keyword_copies(self, ids: list[str], hits: dict[str, Hit]) -> None:
        """Texts and the little metadata the keyword index keeps, so that search still answers without Chroma."""
        for row in self.keywords.rows(ids):
            hits[row.chunk_id].text = row.text
            hits[row.chunk_id].metadata = {"source": row.source, "doc_type": row.doc_type}
        for chunk_id in ids:
            if not hits[chunk_id].metadata:
                hits[chunk_id].dropped = True

    def rerank(self, query: str, shown: list[Hit]) -> list[Hit]:
        """The cross-encoder reads query and chunk together, so it reorders the head the indexes found."""
        assert self.reranker is not None
        head = shown[: self.reranker.top_n]
        for hit, score in zip(head, self.reranker.score(query, [hit.text for hit in head]), strict=True):
            hit.rerank_score = score
        return sorted(head, key=lambda hit: -(hit.rerank_score or 0.0)) + shown[len(head) :]

    @staticmethod
    def diversify(plan: Plan, vector: Sequence[float], shown: list[Hit]) -> list[Hit]:
        """Near-duplicates would fill the top k with one passage: MMR trades some relevance for novelty."""
        return [shown[i] for i in mmr_order(vector, shown, plan.k, plan.options.mmr_lambda)]


def _passes(plan: Plan, hit: Hit) -> bool:
    if hit.dropped or not matches(hit.metadata, plan.filters):
        return False
    score = hit.keyword_score if plan.mode == "keyword" else hit.dense_score
    return plan.options.min_score is None or (score or 0.0) >= plan.options.min_score


def to_document(hit: Hit) -> Document:
    meta = dict(hit.metadata)
    meta.update(chunk_id=hit.chunk_id, score=round(hit.fused, 4))
    if hit.dense_score is not None:
        meta["similarity"] = round(hit.dense_score, 4)
    if hit.keyword_score is not None:
        meta["bm25"] = round(hit.keyword_score, 4)
    if hit.rerank_score is not None:
        meta["rerank_score"] = round(hit.rerank_score, 4)
    return Document(page_content=hit.text, metadata=meta, id=hit.chunk_id)


def matches(meta: Mapping[str, object], filters: Mapping[str, object]) -> bool:
    return all(value in (None, "") or meta.get(key) == value for key, value in filters.items())


def where_clause(filters: Mapping[str, object] | None) -> dict[str, object] | None:
    """Chroma's `where` for metadata equalities; empty values mean 'any'."""
    clauses = [{key: value} for key, value in (filters or {}).items() if value not in (None, "")]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def reciprocal_rank_fusion(
    dense: Sequence[str], keyword: Sequence[str], dense_weight: float = 1.0, keyword_weight: float = 1.0
) -> dict[str, float]:
    """Weighted RRF, normalised so that a chunk ranked first by every weighted list scores 1.0."""
    total = (dense_weight if dense else 0.0) + (keyword_weight if keyword else 0.0)
    if total == 0:
        return {}
    scores: dict[str, float] = {}
    for weight, ranking in ((dense_weight, dense), (keyword_weight, keyword)):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    best = total / (RRF_K + 1)
    return {chunk_id: score / best for chunk_id, score in scores.items()}


def mmr_order(query_vector: Sequence[float], hits: list[Hit], k: int, lambda_mult: float) -> list[int]:
    """Indices of `hits` chosen by maximal marginal relevance (relevance vs. novelty)."""
    import numpy as np
    from langchain_core.vectorstores.utils import maximal_marginal_relevance

    with_vectors = [i for i, hit in enumerate(hits) if hit.embedding is not None]
    if not with_vectors:
        return list(range(min(k, len(hits))))
    chosen = maximal_marginal_relevance(
        np.asarray(query_vector, dtype=np.float32),
        [list(hits[i].embedding) for i in with_vectors],  # type: ignore[arg-type]
        lambda_mult=lambda_mult,
        k=min(k, len(with_vectors)),
    )
    return [with_vectors[i] for i in chosen]
