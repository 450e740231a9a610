"""`KnowledgeBase`: the one door to the store. Ingest writes through it; the CLI, agent and UI read through it.

Incremental indexing lives here, once (the Khoj pattern): chunk ids are derived from content, so a rerun
or an edited file embeds only chunks that aren't stored yet, and whatever a source no longer produces is
deleted.

Chroma holds the vectors and the metadata filters run on; the chunk texts live in the keyword index's
SQLite table, and in Chroma too only where other clients of a Chroma server read them (`texts_in_chroma`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from langchain_core.documents import Document

from knowledge_base.chroma import open_collection
from knowledge_base.config import SearchConfig, StoreConfig
from knowledge_base.embeddings import Embedder
from knowledge_base.keyword_index import KeywordHit, KeywordIndex
from knowledge_base.records import SourceRecord, SourceRecords
from knowledge_base.reranker import CrossEncoderReranker
from knowledge_base.retrieval import Candidate, SearchOptions, mmr_order, reciprocal_rank_fusion

T = TypeVar("T")
CHROMA_CALL_CHUNKS = 512
log = logging.getLogger(__name__)


@dataclass
class ChunkedSource:
    """One source, read and split: what ingest hands to the knowledge base."""

    source: str
    content_hash: str
    chunks: list[Document]
    title: str = ""
    doc_type: str = ""
    kind: str = ""


@dataclass
class WriteResult:
    embedded: int = 0
    reused: int = 0
    deleted: int = 0
    sources: list[str] = field(default_factory=list)


def chunk_ids(source: str, texts: Sequence[str]) -> list[str]:
    """Ids from the source and the chunk's own text: the same content always gets the same id."""
    prefix = hashlib.sha1(source.encode()).hexdigest()[:16]
    seen: dict[str, int] = {}
    ids = []
    for text in texts:
        digest = hashlib.sha1(text.encode()).hexdigest()[:16]
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        ids.append(f"{prefix}-{digest}" + (f"-{n}" if n else ""))
    return ids


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class KnowledgeBase:
    """The store and its searches. Built from its parts (`kbagent.components.open_knowledge_base`)."""

    def __init__(
        self,
        store: StoreConfig,
        search: SearchConfig,
        embedder: Embedder,
        client: Any,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.store = store
        self.search_config = search
        self.embedder = embedder
        self.client = client
        self.collection = open_collection(client, store.collection, embedder)
        self.records = SourceRecords(store.records_path)
        self.keywords = KeywordIndex(self.records.connection, search.keyword_max_scored_rows)
        self.reranker = reranker
        self._max_batch = min(client.get_max_batch_size(), 5000)
        self.texts_in_chroma = store.texts_in_chroma
        self._lock = FileLock(str(store.lock_path))  # one object: re-entrant within this process
        self._searcher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kb-keyword")
        if self.keywords.count() == 0 and self.records.hashes():
            self.rebuild_keyword_index()

    def close(self) -> None:
        self._searcher.shutdown(wait=True)
        self.records.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------------------------

    def rebuild_keyword_index(self) -> int:
        """Refill the keyword index from Chroma's copies of the texts (stores made before it existed).

        A source whose texts Chroma doesn't hold loses its record instead, so the next ingest reads it again:
        its chunk ids are unchanged, so its vectors are reused rather than embedded again.
        """
        rows = []
        textless: set[str] = set()
        offset = 0
        while True:
            page = self.collection.get(include=["documents", "metadatas"], limit=self._max_batch, offset=offset)
            if not page["ids"]:
                break
            for chunk_id, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
                source = meta.get("source", "")
                if text is None:
                    textless.add(source)
                else:
                    rows.append((chunk_id, source, meta.get("doc_type", ""), text))
            offset += len(page["ids"])
        rows = [r for r in rows if r[1] not in textless]
        with self.records.transaction():
            self.keywords.replace_sources(sorted({r[1] for r in rows} | textless), rows)
            self.records.delete_many(textless)
        if textless:
            log.warning(
                "the texts of %d sources are gone from %s; ingest them again to restore them (no re-embedding)",
                len(textless),
                self.store.records_path,
            )
        return len(rows)

    def source_hashes(self) -> dict[str, str]:
        return self.records.hashes()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One writer at a time per data dir: a second ingest waits for the first, and says so."""
        lock = self._lock
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("another kbagent process is writing to %s; waiting for it", self.store.data_dir)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def write(self, items: Sequence[ChunkedSource], on_embedded: Callable[[int], None] | None = None) -> WriteResult:
        """Make the store hold exactly these chunks for these sources, embedding only what is new."""
        now = time.time()
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        records = []
        for item in items:
            item_texts = [c.page_content for c in item.chunks]
            item_ids = chunk_ids(item.source, item_texts)
            for index, (chunk, chunk_id) in enumerate(zip(item.chunks, item_ids, strict=True)):
                meta = {k: v for k, v in chunk.metadata.items() if v is not None and v != ""}
                meta.update(
                    source=item.source,
                    title=item.title,
                    doc_type=item.doc_type,
                    kind=item.kind,
                    chunk_index=index,
                    content_hash=item.content_hash,
                    ingested_at=now,
                )
                ids.append(chunk_id)
                metas.append(meta)
            texts.extend(item_texts)
            records.append(
                SourceRecord(item.source, item.content_hash, item.title, item.doc_type, item.kind, item_ids, now)
            )

        stored = self._existing_ids(ids)
        new = [i for i, chunk_id in enumerate(ids) if chunk_id not in stored]
        reused = [i for i, chunk_id in enumerate(ids) if chunk_id in stored]
        self._embed_and_add(new, ids, texts, metas, on_embedded)
        for part in batched(reused, self._max_batch):
            self.collection.update(ids=[ids[i] for i in part], metadatas=[metas[i] for i in part])

        wanted = set(ids)
        stale = [i for i in self._ids_of_sources([it.source for it in items]) if i not in wanted]
        for part in batched(stale, self._max_batch):
            self.collection.delete(ids=list(part))
        keyword_rows = [(ids[i], metas[i]["source"], metas[i]["doc_type"], texts[i]) for i in range(len(ids))]
        with self.records.transaction():
            self.records.put_many(records)
            self.keywords.replace_sources([it.source for it in items], keyword_rows)
        return WriteResult(len(new), len(reused), len(stale), [it.source for it in items])

    def _embed_and_add(
        self,
        positions: list[int],
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        on_embedded: Callable[[int], None] | None,
    ) -> None:
        # Similar lengths in one batch waste less padding; the store's order doesn't matter. Chroma's cost is
        # mostly per call, so the store gets a few hundred chunks at a time (256: 1.3 s for 2,363 chunks,
        # against 2.3 s in batches of 32), the model its own best batch size. These ids were just found
        # missing (and the write lock is held), so `add` skips the existence check `upsert` makes (-10%).
        # The texts follow in the SQLite transaction after these calls: a vector whose text never arrived
        # (a crash between) is never shown, and the rerun that reuses it writes the text.
        order = sorted(positions, key=lambda i: len(texts[i]))
        step = max(getattr(self.embedder, "batch_size", 32), 1)
        for group in batched(order, max(min(self._max_batch, CHROMA_CALL_CHUNKS), step)):
            vectors: list[list[float]] = []
            for part in batched(group, step):
                vectors.extend(self.embedder.embed([texts[i] for i in part]))
                if on_embedded:
                    on_embedded(len(part))
            self.collection.add(
                ids=[ids[i] for i in group],
                embeddings=vectors,
                documents=[texts[i] for i in group] if self.texts_in_chroma else None,
                metadatas=[metas[i] for i in group],
            )

    def _existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for part in batched(ids, self._max_batch):
            found.update(self.collection.get(ids=list(part), include=[])["ids"])
        return found

    def _ids_of_sources(self, sources: list[str]) -> list[str]:
        found: list[str] = []
        for part in batched(sources, 500):
            where = {"source": part[0]} if len(part) == 1 else {"source": {"$in": list(part)}}
            found.extend(self.collection.get(where=where, include=[])["ids"])
        return found

    def remove(self, sources: Iterable[str]) -> list[str]:
        """Delete sources: record first, then chunks, so a crash between never leaves a record without chunks."""
        sources = list(dict.fromkeys(sources))
        if not sources:
            return []
        with self.writing():
            with self.records.transaction():
                self.records.delete_many(sources)
                self.keywords.delete_sources(sources)
            for part in batched(self._ids_of_sources(sources), self._max_batch):
                self.collection.delete(ids=list(part))
        return sources

    # ---- reading ---------------------------------------------------------------------------------

    def sources(self, prefix: str | None = None) -> list[SourceRecord]:
        return self.records.all(prefix)

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        options: SearchOptions | None = None,
    ) -> list[Document]:
        """Top-k chunks, best first. Metadata carries `score` (the mode's own), `chunk_id`, and where
        computed `similarity` (cosine), `bm25`, `rerank_score`.

        filters: `doc_type`, `source_prefix` (a path or URL prefix), or any other metadata equality.
        """
        k = k or self.search_config.k
        options = options or self.default_options()
        if not query.strip():
            return []
        filters = dict(filters or {})
        sources = None
        prefix = filters.pop("source_prefix", None)
        if prefix:
            sources = [r.source for r in self.records.all(prefix)]
            if not sources:
                return []
        pool = options.candidates or max(4 * k, 40)
        doc_type = filters.get("doc_type")
        other = {key: v for key, v in filters.items() if key != "doc_type" and v not in (None, "")}
        mode = options.mode

        # The keyword index (SQLite releases the GIL) runs in a thread while the query is embedded and the
        # dense index searched: at 100k chunks that hides the smaller of the two (bench/query_scale.py).
        def search_keywords() -> Future[list[KeywordHit]]:
            # Other metadata filters are applied after the keyword search: ask for more to keep k after them.
            return self._searcher.submit(
                self.keywords.search, query, pool if not other else pool * 4, doc_type, sources
            )

        keyword_job = search_keywords() if mode in ("keyword", "hybrid") else None
        want_vectors = options.mmr or mode != "keyword"
        vector = self.embedder.embed_query(query) if want_vectors else None

        candidates: dict[str, Candidate] = {}
        dense_ids: list[str] = []
        if mode in ("dense", "hybrid"):
            try:
                dense_ids = self._dense_candidates(vector, pool, filters, sources, candidates)
            except Exception as exc:  # chromadb's own errors; the keyword index still answers
                log.warning("dense search failed (%s); answering from the keyword index only", str(exc)[:200])
                mode = "keyword"
                if keyword_job is None:
                    keyword_job = search_keywords()
        keyword_ids: list[str] = []
        if keyword_job is not None:
            for rank, hit in enumerate(keyword_job.result(), start=1):
                c = candidates.setdefault(hit.chunk_id, Candidate(hit.chunk_id))
                c.keyword_rank, c.keyword_score = rank, hit.score
                keyword_ids.append(hit.chunk_id)
        if mode == "hybrid":
            fused = reciprocal_rank_fusion(dense_ids, keyword_ids, options.dense_weight, options.keyword_weight)
        elif mode == "dense":
            fused = {i: candidates[i].dense_score or 0.0 for i in dense_ids}
        else:
            fused = {i: candidates[i].keyword_score or 0.0 for i in keyword_ids}
        ranked = sorted(fused, key=lambda i: -fused[i])[: max(pool, k)]
        for chunk_id in ranked:
            candidates[chunk_id].fused = fused[chunk_id]
        score_key = "keyword_score" if mode == "keyword" else "dense_score"
        reranking = self.reranker is not None and options.rerank

        def keep(c: Candidate) -> bool:
            if c.metadata is None or not _matches(c.metadata, filters):
                return False
            return options.min_score is None or (getattr(c, score_key) or 0.0) >= options.min_score

        # Read texts only for what will be shown: the top k, or the whole pool when MMR or a re-ranker
        # still reorders it. Candidates dropped by a filter are replaced from further down the ranking.
        want = len(ranked) if options.mmr or reranking else k
        chosen: list[Candidate] = []
        start = 0
        while start < len(ranked) and len(chosen) < want:
            window = ranked[start : start + max(want - len(chosen), 8)]
            self._fill(window, candidates, vector)
            chosen.extend(c for c in (candidates[i] for i in window) if keep(c))
            start += len(window)
        if reranking and chosen:
            head = chosen[: self.reranker.top_n]
            for c, score in zip(head, self.reranker.score(query, [c.text for c in head]), strict=True):
                c.rerank_score = score
            chosen = sorted(head, key=lambda c: -(c.rerank_score or 0.0)) + chosen[len(head) :]
        if options.mmr and vector is not None:
            chosen = [chosen[i] for i in mmr_order(vector, chosen, k, options.mmr_lambda)]
        return [_document(c) for c in chosen[:k]]

    def default_options(self) -> SearchOptions:
        s = self.search_config
        return SearchOptions(
            mode=s.mode, mmr=s.mmr, min_score=s.min_score, dense_weight=s.dense_weight, keyword_weight=s.keyword_weight
        )

    def _dense_candidates(
        self,
        vector: Sequence[float] | None,
        pool: int,
        filters: dict[str, Any],
        sources: list[str] | None,
        candidates: dict[str, Candidate],
    ) -> list[str]:
        where_filters = dict(filters)
        if sources is not None:
            where_filters["source"] = {"$in": sources} if len(sources) > 1 else sources[0]
        result = self.collection.query(
            query_embeddings=[vector],
            n_results=pool,
            where=_where(where_filters),
            include=["distances"],  # texts are read later, for the few candidates that are shown
        )
        ids = result["ids"][0]
        for rank, (chunk_id, distance) in enumerate(zip(ids, result["distances"][0], strict=True), start=1):
            c = candidates.setdefault(chunk_id, Candidate(chunk_id))
            c.dense_rank, c.dense_score = rank, 1.0 - float(distance)
        return list(ids)

    def _fill(self, ids: list[str], candidates: dict[str, Candidate], vector: Sequence[float] | None) -> None:
        """Text, metadata and vector of these candidates (and the similarity of those only the keyword index found)."""
        missing = [i for i in ids if candidates[i].metadata is not None and not candidates[i].metadata]
        if not missing:
            return
        include = ["documents", "metadatas"] + (["embeddings"] if vector is not None else [])
        try:
            got = self.collection.get(ids=missing, include=include)
        except Exception as exc:  # the dense store is unreadable right now: texts come from the keyword index
            log.warning("reading chunks from Chroma failed (%s); using the keyword index's copies", str(exc)[:200])
            for chunk_id, source, doc_type, text in self.keywords.rows(missing):
                candidates[chunk_id].text = text
                candidates[chunk_id].metadata = {"source": source, "doc_type": doc_type}
            for chunk_id in missing:
                if not candidates[chunk_id].metadata:
                    candidates[chunk_id].metadata = None  # type: ignore[assignment]
            return
        texts = dict(zip(got["ids"], got["documents"], strict=True))
        if textless := [i for i, text in texts.items() if text is None]:
            texts.update((row[0], row[3]) for row in self.keywords.rows(textless))
        found = set()
        for n, chunk_id in enumerate(got["ids"]):
            if texts[chunk_id] is None:  # a vector whose text was never committed: hidden until re-ingested
                continue
            c = candidates[chunk_id]
            c.text, c.metadata = texts[chunk_id], dict(got["metadatas"][n] or {})
            if vector is not None and got.get("embeddings") is not None:
                c.embedding = got["embeddings"][n]
                if c.dense_score is None:
                    c.dense_score = float(sum(a * b for a, b in zip(vector, c.embedding, strict=True)))
            found.add(chunk_id)
        for chunk_id in set(missing) - found:  # a keyword row without its vector, or a vector without text
            candidates[chunk_id].metadata = None  # type: ignore[assignment]

    def stats(self) -> dict[str, Any]:
        records = self.records.all()
        by_type: dict[str, int] = {}
        for record in records:
            by_type[record.doc_type] = by_type.get(record.doc_type, 0) + 1
        return {
            "sources": len(records),
            "chunks": self.collection.count(),
            "recorded_chunks": sum(r.chunks for r in records),
            "doc_types": dict(sorted(by_type.items())),
            "embedding_model": self.embedder.model_name,
            "store": self.store.chroma_url or str(self.store.chroma_path),
            "collection": self.store.collection,
        }


def _document(c: Candidate) -> Document:
    meta = dict(c.metadata)
    meta.update(chunk_id=c.chunk_id, score=round(c.fused, 4))
    if c.dense_score is not None:
        meta["similarity"] = round(c.dense_score, 4)
    if c.keyword_score is not None:
        meta["bm25"] = round(c.keyword_score, 4)
    if c.rerank_score is not None:
        meta["rerank_score"] = round(c.rerank_score, 4)
    return Document(page_content=c.text, metadata=meta, id=c.chunk_id)


def _matches(meta: dict[str, Any], filters: dict[str, Any]) -> bool:
    return all(value in (None, "") or meta.get(key) == value for key, value in filters.items())


def _where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    clauses = [{key: value} for key, value in (filters or {}).items() if value not in (None, "")]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
