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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.documents import Document

from kbagent.errors import UnknownKnowledgeBase
from knowledge_base.backend import Backend, Place
from knowledge_base.chroma import open_collection
from knowledge_base.config import Mode, SearchConfig, StoreConfig
from knowledge_base.embeddings import Embedder
from knowledge_base.keyword_index import KeywordRow
from knowledge_base.records import SourceRecord, display_path
from knowledge_base.reranker import CrossEncoderReranker
from knowledge_base.retrieval import Filters, HybridSearch, MetaValue, SearchOptions
from knowledge_base.retriever import KnowledgeBaseRetriever

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
    root: str = ""  # the folder it was ingested from, for showing it relative to that (records only)
    page_words: dict[int, bytes] = field(default_factory=dict)
    """Page → its OCR words (`ingest.text.words`), kept beside the record for the viewer's highlights."""


@dataclass
class WriteResult:
    embedded: int = 0
    reused: int = 0
    deleted: int = 0
    sources: list[str] = field(default_factory=list)
    copied: int = 0  # vectors taken from a moved source's old chunks rather than embedded


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
    """One knowledge base: its store and its searches. Built from its parts (`kbagent.components`)."""

    def __init__(
        self,
        store: StoreConfig,
        search: SearchConfig,
        embedder: Embedder,
        client: Any,
        backend: Backend,
        reranker: CrossEncoderReranker | None = None,
        *,
        place: Place | None = None,
        name: str = "",
        alive: Callable[[], bool] | None = None,
    ) -> None:
        """backend: where the source records, the keyword index and the ingest lock live; `place`: its collection
        and folder (by default the one `store` names); `alive`: False once a deletion of it started (the catalog
        says), so a search or write in progress ends with one line instead of a storage error."""
        self.store = store
        self.search_config = search
        self.embedder = embedder
        self.client = client
        self.place = place or Place.of(store)
        self.name = name or self.place.collection
        self._alive = alive
        self.collection = open_collection(client, self.place.collection, embedder)
        self.records = backend.records
        self.keywords = backend.keywords
        self.records_at = backend.where
        self.watch_lock = backend.watch_lock
        self.reranker = reranker
        self._max_batch = min(client.get_max_batch_size(), 5000)
        self.texts_in_chroma = store.texts_in_chroma
        self._lock = backend.lock  # one object: re-entrant within this process
        self._searcher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kb-keyword")
        if self.keywords.count() == 0 and self.records.hashes():
            self.rebuild_keyword_index()
        self._search = HybridSearch(
            self.collection, self.keywords, embedder, self.reranker, self._searcher, self.records
        )

    @property
    def id(self) -> str:
        """What never changes: its collection (and PostgreSQL schema); conversations name it."""
        return self.place.collection

    def check_alive(self) -> None:
        """Raises UnknownKnowledgeBase once a deletion of this knowledge base has started."""
        if self._alive is not None and not self._alive():
            raise UnknownKnowledgeBase(f"the knowledge base {self.name!r} was deleted")

    @property
    def max_batch(self) -> int:
        """The most chunks one Chroma call takes."""
        return self._max_batch

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
                    rows.append(KeywordRow(chunk_id, source, meta.get("doc_type", ""), text))
            offset += len(page["ids"])
        rows = [r for r in rows if r.source not in textless]
        with self.records.transaction():
            self.keywords.replace_sources(sorted({r.source for r in rows} | textless), rows)
            self.records.delete_many(textless)
        if textless:
            log.warning(
                "the texts of %d sources are gone from %s; ingest them again to restore them (no re-embedding)",
                len(textless),
                self.records_at,
            )
        return len(rows)

    def source_hashes(self) -> dict[str, str]:
        return self.records.hashes()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One writer at a time per knowledge base: a second ingest waits for the first, and says so."""
        lock = self._lock
        if not lock.acquire(wait=False):
            log.warning("another kbagent process is writing to %s; waiting for it", self.records_at)
            lock.acquire(wait=True)
        try:
            self.check_alive()
            self._finish_deletes()
            yield
        finally:
            lock.release()

    def _finish_deletes(self) -> None:
        """Delete from Chroma the chunks whose records a removal deleted (a crash may have cut it short)."""
        pending = self.records.pending_deletes()
        if not pending:
            return
        kept = {row.chunk_id for part in batched(pending, 500) for row in self.keywords.rows(part)}
        doomed = [i for i in pending if i not in kept]  # written again since: a record owns it now
        for part in batched(doomed, self._max_batch):
            self.collection.delete(ids=list(part))
        self.records.clear_pending_deletes(pending)

    def write(
        self,
        items: Sequence[ChunkedSource],
        on_embedded: Callable[[int], None] | None = None,
        donors: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Make the store hold exactly these chunks for these sources, embedding only what is new.

        donors: source → a stored source it was moved from; a chunk whose text the donor holds takes the donor's
        vector instead of being embedded (chunk ids derive from the source, so a moved file's chunks get new ids).
        The moved source takes the donor's source id, and the donor's record goes in the same transaction.
        """
        now = time.time()
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, MetaValue]] = []
        owners: list[str] = []
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
            owners.extend([item.source] * len(item_texts))
            records.append(
                SourceRecord(
                    item.source, item.content_hash, item.title, item.doc_type, item.kind, item_ids, now, item.root
                )
            )

        stored = self._existing_ids(ids)
        new = [i for i, chunk_id in enumerate(ids) if chunk_id not in stored]
        reused = [i for i, chunk_id in enumerate(ids) if chunk_id in stored]
        copied = self._donated_vectors(new, texts, owners, donors or {})
        self._embed_and_add([i for i in new if i not in copied], ids, texts, metas, on_embedded)
        for copied_part in batched(sorted(copied), self._max_batch):
            self.collection.add(
                ids=[ids[i] for i in copied_part],
                embeddings=[copied[i] for i in copied_part],
                documents=[texts[i] for i in copied_part] if self.texts_in_chroma else None,
                metadatas=[metas[i] for i in copied_part],
            )
        for reused_part in batched(reused, self._max_batch):
            self.collection.update(ids=[ids[i] for i in reused_part], metadatas=[metas[i] for i in reused_part])

        wanted = set(ids)
        stale = [i for i in self._ids_of_sources([it.source for it in items]) if i not in wanted]
        for part in batched(stale, self._max_batch):
            self.collection.delete(ids=list(part))
        keyword_rows = [
            KeywordRow(ids[i], str(metas[i]["source"]), str(metas[i]["doc_type"]), texts[i]) for i in range(len(ids))
        ]
        retired, retired_chunks = self._hand_over_ids(records, donors or {})
        self._lock.check()
        self.check_alive()
        with self.records.transaction():
            self._retire(retired, retired_chunks)
            self.records.put_many(records)
            self.keywords.replace_sources([it.source for it in items], keyword_rows)
            words = [(it.source, page, data) for it in items for page, data in sorted(it.page_words.items())]
            self.records.replace_page_words([it.source for it in items], words)
        if retired:
            self._finish_deletes()
        sources = [it.source for it in items]
        return WriteResult(len(new) - len(copied), len(reused), len(stale), sources, len(copied))

    def _hand_over_ids(self, records: list[SourceRecord], donors: Mapping[str, str]) -> tuple[list[str], set[str]]:
        """Gives each moved record its donor's source id; the donors to retire, and the chunk ids they own."""
        retired: list[str] = []
        for record in records:
            donor = self.records.get(donors[record.source]) if record.source in donors else None
            if donor is not None and donor.source != record.source:
                record.source_id = donor.source_id
                retired.append(donor.source)
        chunk_ids = set(self._ids_of_sources(retired)) if retired else set()
        for source in retired:
            chunk_ids.update(getattr(self.records.get(source), "chunk_ids", []))
        return retired, chunk_ids

    def _retire(self, sources: Sequence[str], chunk_ids: Iterable[str]) -> None:
        """Deletes these sources' records and keyword rows and notes their chunk ids for deletion from Chroma
        (`_finish_deletes`), inside the caller's transaction: what a removal does, and a move to its old path."""
        if not sources:
            return
        self.records.delete_many(sources)
        self.keywords.delete_sources(sources)
        self.records.replace_page_words(sources, [])
        self.records.note_pending_deletes(sorted(chunk_ids))

    def _donated_vectors(
        self, positions: list[int], texts: list[str], owners: list[str], donors: Mapping[str, str]
    ) -> dict[int, list[float]]:
        """Vectors for the chunks at `positions` whose owner's donor holds the same text: position → vector."""
        wanted = {owners[i] for i in positions if owners[i] in donors}
        found: dict[int, list[float]] = {}
        for owner in wanted:
            record = self.records.get(donors[owner])
            if record is None or not record.chunk_ids:
                continue
            by_text: dict[str, list[float]] = {}
            for part in batched(record.chunk_ids, min(self._max_batch, 500)):
                text_of = {row.chunk_id: row.text for row in self.keywords.rows(part)}
                got = self.collection.get(ids=list(part), include=["embeddings"])
                for i, vector in zip(got["ids"], got["embeddings"], strict=True):
                    if i in text_of:
                        by_text[text_of[i]] = [float(x) for x in vector]
            for i in positions:
                if owners[i] == owner and texts[i] in by_text:
                    found[i] = by_text[texts[i]]
        return found

    def _embed_and_add(
        self,
        positions: list[int],
        ids: list[str],
        texts: list[str],
        metas: list[dict[str, MetaValue]],
        on_embedded: Callable[[int], None] | None,
    ) -> None:
        # The embedder gets a few hundred chunks at a time (it batches them by length itself), and Chroma's write
        # of one group runs on a thread while the next group embeds. These ids were just found missing (and the
        # write lock is held), so `add` skips the existence check `upsert` makes.
        # The texts follow in the SQLite transaction after these calls: a vector whose text never arrived
        # (a crash between) is never shown, and the rerun that reuses it writes the text.
        # Each group spans every length (the embedder sorts by token count itself), so the first one, which
        # may time the engines (`knowledge_base.calibration`), looks like the whole job.
        order = sorted(positions, key=lambda i: len(texts[i]))
        count = -(-len(order) // min(self._max_batch, CHROMA_CALL_CHUNKS))
        writing: Future[None] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="kb-write") as writer:
            for group in (order[start::count] for start in range(count)):
                vectors = self.embedder.embed_many([texts[i] for i in group], on_embedded)
                if writing is not None:
                    writing.result()
                writing = writer.submit(
                    self.collection.add,
                    ids=[ids[i] for i in group],
                    embeddings=vectors,
                    documents=[texts[i] for i in group] if self.texts_in_chroma else None,
                    metadatas=[metas[i] for i in group],
                )
            if writing is not None:
                writing.result()

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
        """Delete sources: record first, then chunks, so a crash between never leaves a record without chunks;
        the chunk ids go into `pending_deletes` with it, so the next writer deletes what a crash left."""
        sources = list(dict.fromkeys(sources))
        if not sources:
            return []
        with self.writing():
            chunk_ids = set(self._ids_of_sources(sources))
            for source in sources:
                record = self.records.get(source)
                chunk_ids.update(record.chunk_ids if record else [])
            self._lock.check()
            with self.records.transaction():
                self._retire(sources, chunk_ids)
            self._finish_deletes()
        return sources

    # ---- reading ---------------------------------------------------------------------------------

    def sources(self, prefix: str | None = None) -> list[SourceRecord]:
        return self.records.all(prefix)

    def source_by_id(self, source_id: str) -> SourceRecord | None:
        """The record with this stable id (`records.SourceRecord.source_id`), or None."""
        return self.records.by_id(source_id)

    def page_words(self, source: str, page: int) -> bytes | None:
        """Where OCR found the words of a scanned page of `source` (`ingest.text.words.PageWords`), or None."""
        return self.records.page_words(source, page)

    def display_names(self) -> dict[str, str]:
        """Each source as its user knows it (`records.display_path`): relative to its ingest folder, or its URL."""
        return {source: display_path(source, root) for source, root in self.records.roots().items()}

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        options: SearchOptions | None = None,
    ) -> list[Document]:
        """Top-k chunks, best first. Metadata carries `score` (the mode's own), `chunk_id`, and where
        computed `similarity` (cosine), `bm25`, `rerank_score`.

        filters: `doc_type`, `source_prefix` (a path or URL prefix), or any other metadata equality.
        """
        self.check_alive()
        try:
            return self._search.search(query, k or self.search_config.k, filters, options or self.default_options())
        except Exception:
            self.check_alive()  # a search cut short by a deletion says so, in one line
            raise

    def as_retriever(
        self, k: int = 4, mode: Mode | None = None, filters: Filters | None = None
    ) -> KnowledgeBaseRetriever:
        """This knowledge base as a LangChain retriever (`knowledge_base.retriever`), for LCEL chains and tools."""
        return KnowledgeBaseRetriever(kb=self, k=k, mode=mode, filters=filters or {})

    def default_options(self) -> SearchOptions:
        s = self.search_config
        return SearchOptions(
            mode=s.mode, mmr=s.mmr, min_score=s.min_score, dense_weight=s.dense_weight, keyword_weight=s.keyword_weight
        )

    def stats(self) -> dict[str, object]:
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
            "knowledge_base": self.name,
            "collection": self.place.collection,
        }
