"""Where a knowledge base keeps its source records, keyword index and ingest lock: embedded SQLite files in the
data dir (one machine), or PostgreSQL (`KBAGENT_DATABASE_URL`: any number of replicas and ingesters).

Chroma holds the vectors either way; `KnowledgeBase` sees only these three small interfaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Place:
    """Where one knowledge base keeps what is its own: its Chroma collection (also its PostgreSQL schema) and its
    folder: the records and keyword index of an embedded store, the ingest and watch locks, the uploads and the
    watched-folder list. The data dir itself is the folder of the knowledge base data dirs always held."""

    collection: str
    folder: Path

    @classmethod
    def of(cls, store: StoreConfig) -> Place:
        """The knowledge base `store` names on its own: KBAGENT_COLLECTION's, in the data dir."""
        return cls(store.collection, store.data_dir)

    @property
    def records_path(self) -> Path:
        return self.folder / "sources.sqlite3"

    @property
    def lock_path(self) -> Path:
        return self.folder / "ingest.lock"

    @property
    def watch_lock_path(self) -> Path:
        return self.folder / "watch.lock"

    @property
    def uploads_path(self) -> Path:
        return self.folder / "uploads"

    @property
    def watch_list_path(self) -> Path:
        return self.folder / "watched_folders.json"

    def own_files(self) -> list[Path]:
        """What deleting the knowledge base removes from its folder (the data dir's own folder holds others')."""
        records = self.records_path
        extra = [records.with_name(records.name + suffix) for suffix in ("-wal", "-shm", "-journal")]
        return [records, *extra, self.lock_path, self.watch_lock_path, self.uploads_path, self.watch_list_path]


class FileWriteLock:
    """A lock file: one writer per embedded store (re-entrant within a process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(path))

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
    watch_lock: WriteLock  # held by a `kbagent watch` following this knowledge base


def open_backend(store: StoreConfig, search: SearchConfig, place: Place | None = None) -> Backend:
    """The knowledge base at `place` (by default the one `store` names): SQLite files in its folder, or its schema
    in the PostgreSQL database of `store.database_url`."""
    place = place or Place.of(store)
    url = store.database_url.get_secret_value()
    if url:
        from knowledge_base.postgres import AdvisoryLock, Database, PostgresKeywordIndex, PostgresRecords

        db = Database(url, place.collection)
        index = PostgresKeywordIndex(db, search.keyword_max_scored_rows)
        return Backend(PostgresRecords(db), index, AdvisoryLock(db), db.where, AdvisoryLock(db, "watch"))
    records = SourceRecords(place.records_path)
    keywords = KeywordIndex(records.connection, search.keyword_max_scored_rows)
    lock, watch_lock = FileWriteLock(place.lock_path), FileWriteLock(place.watch_lock_path)
    return Backend(records, keywords, lock, str(place.records_path), watch_lock)
