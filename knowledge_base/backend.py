"""Where a knowledge base keeps its source records, keyword index and ingest lock: embedded SQLite files in the
data dir (one machine), or PostgreSQL (`KBAGENT_DATABASE_URL`: any number of replicas and ingesters).

Chroma holds the vectors either way; `KnowledgeBase` sees only these three small interfaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from filelock import FileLock, Timeout

from knowledge_base.config import SearchConfig, StoreConfig
from knowledge_base.keyword_index import KeywordHit, KeywordIndex, KeywordRow
from knowledge_base.records import SourceRecord, SourceRecords


class RecordStore(Protocol):
    def get(self, source: str) -> SourceRecord | None: ...
    def by_id(self, source_id: str) -> SourceRecord | None: ...
    def replace_page_words(self, sources: Sequence[str], rows: Iterable[tuple[str, int, bytes]]) -> None: ...
    def page_words(self, source: str, page: int) -> bytes | None: ...
    def source_ids(self, sources: Iterable[str]) -> dict[str, str]: ...
    def roots(self) -> dict[str, str]: ...
    def hashes(self) -> dict[str, str]: ...
    def all(self, prefix: str | None = None) -> list[SourceRecord]: ...
    def put_many(self, records: Iterable[SourceRecord]) -> None: ...
    def delete_many(self, sources: Iterable[str]) -> None: ...
    def note_pending_deletes(self, chunk_ids: Iterable[str]) -> None: ...
    def pending_deletes(self) -> list[str]: ...
    def clear_pending_deletes(self, chunk_ids: Iterable[str]) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


class KeywordSearch(Protocol):
    max_scored_rows: int

    def replace_sources(self, sources: Sequence[str], rows: Iterable[KeywordRow]) -> None: ...
    def delete_sources(self, sources: Sequence[str]) -> None: ...
    def rows(self, chunk_ids: Sequence[str]) -> list[KeywordRow]: ...
    def count(self) -> int: ...
    def search(
        self, query: str, k: int, doc_type: str | None = None, sources: Sequence[str] | None = None
    ) -> list[KeywordHit]: ...


class WriteLock(Protocol):
    def acquire(self, wait: bool) -> bool: ...
    def release(self) -> None: ...
    def check(self) -> None:
        """Raises when a held lock was lost (a server lock whose connection dropped), before anything commits."""


class FileWriteLock:
    """The data dir's lock file: one writer per embedded store (re-entrant within a process)."""

    def __init__(self, store: StoreConfig) -> None:
        self._lock = FileLock(str(store.lock_path))

    def acquire(self, wait: bool) -> bool:
        try:
            self._lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()

    def check(self) -> None:
        """A lock file held by this process cannot be lost."""


@dataclass
class Backend:
    records: RecordStore
    keywords: KeywordSearch
    lock: WriteLock
    where: str  # for messages: the records' file, or the database's host:port


def open_backend(store: StoreConfig, search: SearchConfig) -> Backend:
    """The embedded SQLite files of the data dir, or the PostgreSQL database of `store.database_url`."""
    url = store.database_url.get_secret_value()
    if url:
        from knowledge_base.postgres import AdvisoryLock, Database, PostgresKeywordIndex, PostgresRecords

        db = Database(url, store.collection)
        return Backend(
            PostgresRecords(db), PostgresKeywordIndex(db, search.keyword_max_scored_rows), AdvisoryLock(db), db.where
        )
    records = SourceRecords(store.records_path)
    keywords = KeywordIndex(records.connection, search.keyword_max_scored_rows)
    return Backend(records, keywords, FileWriteLock(store), str(store.records_path))
