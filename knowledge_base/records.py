"""Source records: what was ingested, its hash and its chunk ids, kept in SQLite beside the store.

Each record has a `source_id`: random, given at its first ingest and kept when the source is read again or moved
(the store hands a moved source its old record's id), so an address to a source outlives edits and renames.
Records from before ids were kept get theirs when the store is opened: one statement, nothing re-read.

Write order makes the pair crash-safe: chunks reach Chroma before their record is written, and a record
is deleted before its chunks. So a record always describes chunks that exist, and a rerun redoes
whatever a crash cut short. The chunk ids a deletion still owes Chroma are noted in `pending_deletes`, in the
transaction that deletes their records, so the next writer finishes a deletion a crash cut short.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    source      TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    doc_type    TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL DEFAULT '',
    chunk_ids   TEXT NOT NULL,
    ingested_at REAL NOT NULL,
    root        TEXT NOT NULL DEFAULT '',
    source_id   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pending_deletes (chunk_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS page_words (
    source TEXT NOT NULL,
    page   INTEGER NOT NULL,
    words  BLOB NOT NULL,
    PRIMARY KEY (source, page)
);
"""
COLUMNS = "source, content_hash, title, doc_type, kind, chunk_ids, ingested_at, root, source_id"
ID_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS sources_by_id ON sources (source_id)"
UPSERT = (
    f"INSERT INTO sources ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS.split(", ")[1:])
)


def location_of(meta: Mapping[str, object]) -> str:
    """Where in its source a chunk lies, as citations show it: "p. 3" for a PDF page, else the loader's own
    words ("slide 3", "sheet Budget", "chapter 2", "attachment a.pdf, p. 2"); '' for a source read as a whole."""
    return f"p. {meta['page']}" if meta.get("page") else str(meta.get("location") or "")


def display_path(source: str, root: str = "") -> str:
    """A source as its user knows it: a URL as it is, a file relative to the folder it was ingested from (`root`),
    else its name. Only for showing: the API and `--json` keep `source`."""
    if "://" in source:
        return source
    if root and source.startswith(root.rstrip(os.sep) + os.sep):
        return source[len(root.rstrip(os.sep)) + 1 :]
    return os.path.basename(source) or source


def new_source_id() -> str:
    """A fresh source id: random (it says nothing of the path), 16 hex digits."""
    return secrets.token_hex(8)


@dataclass
class SourceRecord:
    source: str
    content_hash: str
    title: str = ""
    doc_type: str = ""
    kind: str = ""
    chunk_ids: list[str] = field(default_factory=list)
    ingested_at: float = field(default_factory=time.time)
    root: str = ""  # the folder it was ingested from ("" for pages and for records older than this field)
    source_id: str = ""  # "" until stored: `put_many` keeps the stored one or gives a new one

    @property
    def display(self) -> str:
        return display_path(self.source, self.root)

    @property
    def chunks(self) -> int:
        return len(self.chunk_ids)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "source_id": self.source_id,
            "title": self.title,
            "doc_type": self.doc_type,
            "kind": self.kind,
            "chunks": self.chunks,
            "content_hash": self.content_hash,
            "ingested_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ingested_at)),
        }


def with_ids(records: list[SourceRecord], stored: Mapping[str, str]) -> list[str]:
    """Each record's id: its own, else its `stored` one, else a new one."""
    return [r.source_id or stored.get(r.source) or new_source_id() for r in records]


def record_row(r: SourceRecord, source_id: str) -> tuple[str, str, str, str, str, str, float, str, str]:
    """A record as the columns of COLUMNS, in order."""
    chunk_ids = json.dumps(r.chunk_ids)
    return (r.source, r.content_hash, r.title, r.doc_type, r.kind, chunk_ids, r.ingested_at, r.root, source_id)


class SourceRecords:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Columns a store from before them lacks, and ids for records without one, in one transaction (an
        interrupted upgrade leaves the store as it was). Looked at first without the write lock: most opens
        find nothing to do."""
        if self._columns() >= {"root", "source_id"} and self._has_id_index() and not self._idless():
            return
        with self.transaction():
            columns = self._columns()
            if "root" not in columns:  # a store from before roots were recorded
                self._db.execute("ALTER TABLE sources ADD COLUMN root TEXT NOT NULL DEFAULT ''")
            if "source_id" not in columns:
                self._db.execute("ALTER TABLE sources ADD COLUMN source_id TEXT NOT NULL DEFAULT ''")
            self._db.execute("UPDATE sources SET source_id = lower(hex(randomblob(8))) WHERE source_id = ''")
            self._db.execute(ID_INDEX)

    def _columns(self) -> set[str]:
        return {row[1] for row in self._db.execute("PRAGMA table_info(sources)")}

    def _has_id_index(self) -> bool:
        return bool(self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sources_by_id'").fetchone())

    def _idless(self) -> bool:
        return bool(self._db.execute("SELECT 1 FROM sources WHERE source_id = '' LIMIT 1").fetchone())

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _row(row: tuple) -> SourceRecord:
        source, content_hash, title, doc_type, kind, chunk_ids, ingested_at, root, source_id = row
        chunks = json.loads(chunk_ids)
        return SourceRecord(source, content_hash, title, doc_type, kind, chunks, ingested_at, root, source_id)

    def get(self, source: str) -> SourceRecord | None:
        row = self._db.execute(f"SELECT {COLUMNS} FROM sources WHERE source = ?", (source,)).fetchone()
        return self._row(row) if row else None

    def by_id(self, source_id: str) -> SourceRecord | None:
        """The record with this source id, or None (an empty id names nothing)."""
        if not source_id:
            return None
        row = self._db.execute(f"SELECT {COLUMNS} FROM sources WHERE source_id = ?", (source_id,)).fetchone()
        return self._row(row) if row else None

    def source_ids(self, sources: Iterable[str]) -> dict[str, str]:
        """The stored id of each of these sources that has a record."""
        wanted = list(dict.fromkeys(sources))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ", ".join("?" * len(part))
            found.update(self._db.execute(f"SELECT source, source_id FROM sources WHERE source IN ({marks})", part))
        return found

    def roots(self) -> dict[str, str]:
        """Each source's ingest folder ("" where none was recorded), without reading chunk ids."""
        return dict(self._db.execute("SELECT source, root FROM sources"))

    def hashes(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT source, content_hash FROM sources"))

    def all(self, prefix: str | None = None) -> list[SourceRecord]:
        if prefix:
            rows = self._db.execute(
                f"SELECT {COLUMNS} FROM sources WHERE substr(source, 1, ?) = ? ORDER BY source", (len(prefix), prefix)
            )
        else:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM sources ORDER BY source")
        return [self._row(r) for r in rows]

    def put_many(self, records: Iterable[SourceRecord]) -> None:
        """Write these records; one without a `source_id` keeps its stored one, or gets a new one. An upsert, not
        a REPLACE: a REPLACE would silently delete another record that held the same id."""
        records = list(records)
        with self.transaction():
            ids = with_ids(records, self.source_ids(r.source for r in records if not r.source_id))
            rows = [record_row(r, i) for r, i in zip(records, ids, strict=True)]
            self._db.executemany(UPSERT, rows)

    def delete_many(self, sources: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM sources WHERE source = ?", [(s,) for s in sources])

    def replace_page_words(self, sources: Sequence[str], rows: Iterable[tuple[str, int, bytes]]) -> None:
        """The OCR words of these sources' pages (source, page, `ingest.text.words.PageWords` bytes), in place of
        what they had: a sidecar to the record, written in its transaction."""
        with self.transaction():
            self._db.executemany("DELETE FROM page_words WHERE source = ?", [(s,) for s in sources])
            self._db.executemany("INSERT INTO page_words (source, page, words) VALUES (?, ?, ?)", rows)

    def page_words(self, source: str, page: int) -> bytes | None:
        row = self._db.execute("SELECT words FROM page_words WHERE source = ? AND page = ?", (source, page)).fetchone()
        return bytes(row[0]) if row else None

    def note_pending_deletes(self, chunk_ids: Iterable[str]) -> None:
        """Chunk ids Chroma still holds for records deleted in this transaction (`KnowledgeBase.remove`)."""
        self._db.executemany("INSERT OR IGNORE INTO pending_deletes(chunk_id) VALUES (?)", [(i,) for i in chunk_ids])

    def pending_deletes(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT chunk_id FROM pending_deletes")]

    def clear_pending_deletes(self, chunk_ids: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM pending_deletes WHERE chunk_id = ?", [(i,) for i in chunk_ids])

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction; nested calls join the outer one (records and keyword rows commit together)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
