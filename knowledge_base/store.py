"""`KnowledgeBase`: the one door to the store. Ingest writes through it; the CLI, agent and UI read through it.

Incremental indexing lives here, once (the Khoj pattern): chunk ids are derived from content, so a rerun
or an edited file embeds only chunks that aren't stored yet, and whatever a source no longer produces is
deleted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from filelock import FileLock, Timeout
from langchain_core.documents import Document

from knowledge_base.chroma import open_client, open_collection
from knowledge_base.embeddings import Embedder, build_embedder
from knowledge_base.records import SourceRecord, SourceRecords

T = TypeVar("T")
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
    def __init__(self, settings: Any, embedder: Embedder, client: Any) -> None:
        self.settings = settings
        self.embedder = embedder
        self.client = client
        self.collection = open_collection(client, settings.collection, embedder)
        self.records = SourceRecords(settings.records_path)
        self._max_batch = min(client.get_max_batch_size(), 5000)
        self._lock = FileLock(str(settings.lock_path))  # one object: re-entrant within this process

    @classmethod
    def open(cls, settings: Any, embedder: Embedder | None = None) -> KnowledgeBase:
        return cls(settings, embedder or build_embedder(settings), open_client(settings))

    def close(self) -> None:
        self.records.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------------------------

    def source_hashes(self) -> dict[str, str]:
        return self.records.hashes()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One writer at a time per data dir: a second ingest waits for the first, and says so."""
        lock = self._lock
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("another kbagent process is writing to %s; waiting for it", self.settings.data_dir)
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
        self._embed_and_upsert(new, ids, texts, metas, on_embedded)
        for part in batched(reused, self._max_batch):
            self.collection.update(ids=[ids[i] for i in part], metadatas=[metas[i] for i in part])

        wanted = set(ids)
        stale = [i for i in self._ids_of_sources([it.source for it in items]) if i not in wanted]
        for part in batched(stale, self._max_batch):
            self.collection.delete(ids=list(part))
        self.records.put_many(records)
        return WriteResult(len(new), len(reused), len(stale), [it.source for it in items])

    def _embed_and_upsert(
        self,
        positions: list[int],
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        on_embedded: Callable[[int], None] | None,
    ) -> None:
        # Similar lengths in one batch waste less padding; the store's order doesn't matter.
        order = sorted(positions, key=lambda i: len(texts[i]))
        step = max(getattr(self.embedder, "batch_size", 32), 1)
        for part in batched(order, step):
            vectors = self.embedder.embed([texts[i] for i in part])
            self.collection.upsert(
                ids=[ids[i] for i in part],
                embeddings=vectors,
                documents=[texts[i] for i in part],
                metadatas=[metas[i] for i in part],
            )
            if on_embedded:
                on_embedded(len(part))

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
            self.records.delete_many(sources)
            for part in batched(self._ids_of_sources(sources), self._max_batch):
                self.collection.delete(ids=list(part))
        return sources

    # ---- reading ---------------------------------------------------------------------------------

    def sources(self, prefix: str | None = None) -> list[SourceRecord]:
        return self.records.all(prefix)

    def search(self, query: str, k: int | None = None, filters: dict[str, Any] | None = None) -> list[Document]:
        """Top-k chunks, best first, each with `score` (cosine similarity) and `chunk_id` in its metadata."""
        k = k or self.settings.search_k
        if not query.strip():
            return []
        vector = self.embedder.embed([query])[0]
        result = self.collection.query(
            query_embeddings=[vector],
            n_results=k,
            where=_where(filters),
            include=["documents", "metadatas", "distances"],
        )
        docs = []
        for chunk_id, text, meta, distance in zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True
        ):
            meta = dict(meta or {})
            meta.update(chunk_id=chunk_id, score=round(1.0 - float(distance), 4))
            docs.append(Document(page_content=text or "", metadata=meta, id=chunk_id))
        return docs

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
            "store": self.settings.chroma_url or str(self.settings.chroma_path),
            "collection": self.settings.collection,
        }


def _where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    clauses = [{key: value} for key, value in (filters or {}).items() if value not in (None, "")]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
