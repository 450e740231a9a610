"""The catalog: every knowledge base of a data dir, in one database for the whole data dir (DATA_DIR/kbagent.sqlite3,
or the `kbagent_global` schema of KBAGENT_DATABASE_URL), where accounts, grants and the audit log can live too.

A knowledge base's `id` is its Chroma collection and its PostgreSQL schema: fixed when it is made, so a rename
touches one row and nothing is moved or embedded again. Its `folder` (relative to the data dir) holds its own files:
records and keyword index (embedded), ingest and watch locks, uploads, watched-folder list. The first knowledge
base of a data dir lives where data dirs always kept one (folder "."), so an existing data dir is that knowledge
base, registered in place. A deletion marks the row first (`deleted_at`) and removes it last, so one cut short
is finished by the next `kbagent kb` command.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kbagent.errors import UserError

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

GLOBAL_SCHEMA = "kbagent_global"  # PostgreSQL: the catalog, and the conversations of every knowledge base
LEGACY_FOLDER = "."
MAX_NAME_CHARS = 64
NAME = re.compile(r"\w(?:[\w .-]*\w)?")
"""Letters and digits of any script, with spaces, dots, dashes and underscores inside: nothing that is a path
separator, a quote, SQL or markup. Checked, not quoted: a name appears in file listings, URLs and the app's HTML."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS knowledge_bases (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    folded          TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    folder          TEXT NOT NULL,
    embedding_model TEXT NOT NULL,
    chunking        TEXT NOT NULL,
    overrides       TEXT NOT NULL DEFAULT '{}',
    created_at      DOUBLE PRECISION NOT NULL,
    deleted_at      DOUBLE PRECISION
);
CREATE UNIQUE INDEX IF NOT EXISTS knowledge_bases_name ON knowledge_bases (folded) WHERE deleted_at IS NULL;
"""
COLUMNS = "id, name, description, folder, embedding_model, chunking, overrides, created_at"

SqlValue = str | int | float | None
"""What the catalog's columns hold, and its queries' parameters."""
Row = tuple[SqlValue, ...]
SettingValues = dict[str, str | int | float | bool | None]
"""Settings by field name, as JSON in the catalog (values are the settings' own: text, numbers, flags)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Row]: ...


class Connection(Protocol):
    """What the catalog uses of a sqlite3 or psycopg connection."""

    def execute(self, query: str, params: list[SqlValue], /) -> Cursor: ...


def check_name(name: str) -> str:
    """The name, NFKC-normalised, or UserError saying which characters a name may have."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        raise UserError("a knowledge base needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise UserError(f"a knowledge base name has at most {MAX_NAME_CHARS} characters")
    if not NAME.fullmatch(name) or ".." in name:
        raise UserError(
            f"refused knowledge base name {name!r}: use letters, digits, spaces, '.', '-' and '_' "
            "(starting and ending with a letter or digit)"
        )
    return name


def fold(name: str) -> str:
    """Names differing only in case are one name."""
    return unicodedata.normalize("NFKC", name).casefold()


def new_id() -> str:
    """A fresh id: a valid Chroma collection name, PostgreSQL schema and folder name."""
    return f"kb-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class KbInfo:
    """One knowledge base as the catalog keeps it."""

    id: str  # its Chroma collection and PostgreSQL schema; never shown as its name
    name: str
    folder: str  # its own files, relative to the data dir
    embedding_model: str
    chunking: SettingValues  # what its chunks were cut with (`ingest.ChunkingConfig`'s fields): fixed
    overrides: SettingValues = field(default_factory=dict)  # its own settings (`kbagent kb set`)
    description: str = ""
    created_at: float = field(default_factory=time.time)

    def path(self, data_dir: Path) -> Path:
        return data_dir / self.folder

    def as_dict(self) -> dict[str, str | SettingValues]:
        return {
            "name": self.name,
            "description": self.description,
            "id": self.id,
            "embedding_model": self.embedding_model,
            "chunking": self.chunking,
            "overrides": self.overrides,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
        }


def _info(row: Row) -> KbInfo:
    kb_id, name, description, folder, model, chunking, overrides = (str(value) for value in row[:7])
    created = row[7]
    assert isinstance(created, int | float)  # created_at is NOT NULL
    return KbInfo(kb_id, name, folder, model, json.loads(chunking), json.loads(overrides), description, created)


class Catalog:
    """The knowledge bases in a database; `SqliteCatalog` and `PostgresCatalog` supply the connection. The SQL is
    written once, with `?` placeholders, which the PostgreSQL side turns into psycopg's `%s`."""

    def _rows(self, query: str, params: Sequence[SqlValue] = ()) -> list[Row]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _execute(self, conn: Connection, query: str, params: Sequence[SqlValue] = ()) -> int:
        """Runs one statement in `conn` (a `_transaction()`'s); the number of rows it changed."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # ---- reading -------------------------------------------------------------------------------------

    def all(self) -> list[KbInfo]:
        """The live knowledge bases, by name."""
        rows = self._rows(f"SELECT {COLUMNS} FROM knowledge_bases WHERE deleted_at IS NULL ORDER BY folded")
        return [_info(r) for r in rows]

    def find(self, name_or_id: str) -> KbInfo | None:
        """A live knowledge base by its name (any case), else by its id."""
        rows = self._rows(
            f"SELECT {COLUMNS} FROM knowledge_bases WHERE deleted_at IS NULL AND (folded = ? OR id = ?) "
            "ORDER BY folded = ? DESC",
            [fold(name_or_id), name_or_id, fold(name_or_id)],
        )
        return _info(rows[0]) if rows else None

    def get(self, kb_id: str) -> KbInfo | None:
        """A live knowledge base by its id."""
        rows = self._rows(f"SELECT {COLUMNS} FROM knowledge_bases WHERE id = ? AND deleted_at IS NULL", [kb_id])
        return _info(rows[0]) if rows else None

    def alive(self, kb_id: str) -> bool:
        """Whether the knowledge base is there and no deletion of it has started (asked before each search)."""
        return bool(self._rows("SELECT 1 FROM knowledge_bases WHERE id = ? AND deleted_at IS NULL", [kb_id]))

    def deleting(self) -> list[KbInfo]:
        """Knowledge bases whose deletion started and has not finished."""
        rows = self._rows(f"SELECT {COLUMNS} FROM knowledge_bases WHERE deleted_at IS NOT NULL")
        return [_info(r) for r in rows]

    def folder_taken(self, folder: str) -> bool:
        return bool(self._rows("SELECT 1 FROM knowledge_bases WHERE folder = ?", [folder]))

    # ---- writing -------------------------------------------------------------------------------------

    def add(self, info: KbInfo) -> KbInfo:
        """Adds a new knowledge base; UserError when its name is taken."""
        with self._transaction() as conn:
            self._check_free(conn, info.name, info.id)
            self._insert(conn, info)
        return info

    def register(self, info: KbInfo) -> KbInfo:
        """The knowledge base with `info.id`, added as `info` unless some process added it first (two replicas
        starting on one database register the existing data once)."""
        with self._transaction() as conn:
            self._insert(conn, info, if_new=True)
            found = self._rows_in(conn, f"SELECT {COLUMNS} FROM knowledge_bases WHERE id = ?", [info.id])
        if not found:  # its name was taken by another
            raise UserError(f"a knowledge base named {info.name!r} exists already; set KBAGENT_KB to another name")
        return _info(found[0])

    def rename(self, kb_id: str, name: str) -> None:
        with self._transaction() as conn:
            self._check_free(conn, name, kb_id)
            self._execute(
                conn, "UPDATE knowledge_bases SET name = ?, folded = ? WHERE id = ?", [name, fold(name), kb_id]
            )

    def update(self, kb_id: str, *, description: str | None = None, overrides: SettingValues | None = None) -> None:
        with self._transaction() as conn:
            if description is not None:
                self._execute(conn, "UPDATE knowledge_bases SET description = ? WHERE id = ?", [description, kb_id])
            if overrides is not None:
                self._execute(
                    conn, "UPDATE knowledge_bases SET overrides = ? WHERE id = ?", [json.dumps(overrides), kb_id]
                )

    def start_delete(self, kb_id: str) -> None:
        """From now on the knowledge base is gone for every reader; its data goes next, then `finish_delete`."""
        with self._transaction() as conn:
            self._execute(
                conn,
                "UPDATE knowledge_bases SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
                [time.time(), kb_id],
            )

    def finish_delete(self, kb_id: str) -> None:
        with self._transaction() as conn:
            self._execute(conn, "DELETE FROM knowledge_bases WHERE id = ? AND deleted_at IS NOT NULL", [kb_id])

    def _check_free(self, conn: Connection, name: str, kb_id: str) -> None:
        """UserError when another knowledge base has this name (in any case)."""
        query = "SELECT name FROM knowledge_bases WHERE folded = ? AND deleted_at IS NULL AND id <> ?"
        holder = self._rows_in(conn, query, [fold(name), kb_id])
        if holder:
            raise UserError(f"a knowledge base named {holder[0][0]!r} exists already")

    def _insert(self, conn: Connection, info: KbInfo, if_new: bool = False) -> None:
        """if_new: nothing happens where the id or the name is taken (no error; see `register`)."""
        self._execute(
            conn,
            "INSERT INTO knowledge_bases (id, name, folded, description, folder, embedding_model, chunking, overrides, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)" + (" ON CONFLICT DO NOTHING" if if_new else ""),
            [
                info.id,
                info.name,
                fold(info.name),
                info.description,
                info.folder,
                info.embedding_model,
                json.dumps(info.chunking),
                json.dumps(info.overrides),
                info.created_at,
            ],
        )

    def _rows_in(self, conn: Connection, query: str, params: Sequence[SqlValue]) -> list[Row]:
        raise NotImplementedError


class SqliteCatalog(Catalog):
    """The catalog in DATA_DIR/kbagent.sqlite3."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA.replace("DOUBLE PRECISION", "REAL"))
        self._lock = threading.RLock()  # one connection, shared by the app's threads

    def _rows(self, query: str, params: Sequence[SqlValue] = ()) -> list[Row]:
        with self._lock:
            return self._db.execute(query, list(params)).fetchall()

    def _rows_in(self, conn: Connection, query: str, params: Sequence[SqlValue]) -> list[Row]:
        return conn.execute(query, list(params)).fetchall()

    def _execute(self, conn: Connection, query: str, params: Sequence[SqlValue] = ()) -> int:
        return conn.execute(query, list(params)).rowcount

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class PostgresCatalog(Catalog):
    """The catalog in the `kbagent_global` schema of KBAGENT_DATABASE_URL's database."""

    def __init__(self, url: str) -> None:
        from knowledge_base.postgres import Database

        self.db = Database(url, GLOBAL_SCHEMA, max_size=4, schema_sql=SCHEMA)

    def _rows(self, query: str, params: Sequence[SqlValue] = ()) -> list[Row]:
        with self.db.connection() as conn:
            return conn.execute(query.replace("?", "%s"), list(params)).fetchall()

    def _rows_in(self, conn: Connection, query: str, params: Sequence[SqlValue]) -> list[Row]:
        return conn.execute(query.replace("?", "%s"), list(params)).fetchall()

    def _execute(self, conn: Connection, query: str, params: Sequence[SqlValue] = ()) -> int:
        return conn.execute(query.replace("?", "%s"), list(params)).rowcount

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[TupleRow]]:
        with self.db.transaction() as conn:
            yield conn

    def close(self) -> None:
        self.db.close()
