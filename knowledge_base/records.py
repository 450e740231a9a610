"""Source records: what was ingested, its hash and its chunk ids, kept in SQLite beside the store.

Write order makes the pair crash-safe: chunks reach Chroma before their record is written, and a record
is deleted before its chunks. So a record always describes chunks that exist, and a rerun redoes
whatever a crash cut short. The chunk ids a deletion still owes Chroma are noted in `pending_deletes`, in the
transaction that deletes their records, so the next writer finishes a deletion a crash cut short.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    source      TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    doc_type    TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL DEFAULT '',
    chunk_ids   TEXT NOT NULL,
    ingested_at REAL NOT NULL,
    root        TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pending_deletes (chunk_id TEXT PRIMARY KEY);
"""
COLUMNS = "source, content_hash, title, doc_type, kind, chunk_ids, ingested_at, root"


def location_of(meta: Mapping[str, Any]) -> str:
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

    @property
    def display(self) -> str:
        return display_path(self.source, self.root)

    @property
    def chunks(self) -> int:
        return len(self.chunk_ids)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "title": self.title,
            "doc_type": self.doc_type,
            "kind": self.kind,
            "chunks": self.chunks,
            "content_hash": self.content_hash,
            "ingested_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.ingested_at)),
        }


class SourceRecords:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sources)")}
        if "root" not in columns:  # a store from before roots were recorded
            self._db.execute("ALTER TABLE sources ADD COLUMN root TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _row(row: tuple) -> SourceRecord:
        source, content_hash, title, doc_type, kind, chunk_ids, ingested_at, root = row
        return SourceRecord(source, content_hash, title, doc_type, kind, json.loads(chunk_ids), ingested_at, root)

    def get(self, source: str) -> SourceRecord | None:
        row = self._db.execute(f"SELECT {COLUMNS} FROM sources WHERE source = ?", (source,)).fetchone()
        return self._row(row) if row else None

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
        rows = [
            (r.source, r.content_hash, r.title, r.doc_type, r.kind, json.dumps(r.chunk_ids), r.ingested_at, r.root)
            for r in records
        ]
        with self.transaction():
            self._db.executemany(f"INSERT OR REPLACE INTO sources ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def delete_many(self, sources: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM sources WHERE source = ?", [(s,) for s in sources])

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
