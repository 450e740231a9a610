"""Conversation threads: LangGraph's checkpointer holds the messages; a small table lists the threads, each with
the knowledge base it belongs to, and another keeps the passages each answer cited (for exports).

One store per data dir, whatever the number of knowledge bases: in SQLite beside them (one machine), or in the
global schema of PostgreSQL (`KBAGENT_DATABASE_URL`), where every replica reads and continues the same
conversations.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_threads (
    thread_id  TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    kb         TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS kb_thread_sources (
    thread_id TEXT NOT NULL,
    answer    TEXT NOT NULL,
    cited     TEXT NOT NULL,
    saved_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS kb_thread_sources_thread ON kb_thread_sources (thread_id);
"""
THREAD_COLUMNS = "thread_id, title, model, created_at, updated_at, kb"
if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

CitedPassage = Mapping[str, object]
"""A cited passage as `Passage.as_dict()` gives it: kept as JSON and shown by exports, never read here."""
LEGACY_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")  # LangGraph's, copied row by row
"""A knowledge base's schema held its conversations before they moved to the global schema (`adopt`)."""


@dataclass
class ThreadInfo:
    thread_id: str
    title: str
    model: str
    created_at: float
    updated_at: float
    kb: str = ""  # the id of the knowledge base it belongs to ('' only in a store not yet adopted)


class Threads(Protocol):
    """What the agent and the app use: the checkpointer, and the list of threads with their titles."""

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        """LangGraph's store of each thread's messages."""
        ...

    def new_thread(self) -> str: ...
    def touch(self, thread_id: str, question: str, model: str, kb: str = "") -> None: ...
    def get(self, thread_id: str) -> ThreadInfo | None: ...
    def delete(self, thread_id: str) -> None: ...
    def close(self) -> None: ...
    def list(self, limit: int = 100, kb: str | None = None) -> list[ThreadInfo]:
        """The latest threads first: of one knowledge base (its id), or of all with None."""
        ...

    def keep_sources(self, thread_id: str, answer: str, cited: Sequence[CitedPassage]) -> None:
        """The passages an answer cited, kept with its text (what an export shows beside it)."""
        ...

    def sources(self, thread_id: str) -> dict[str, builtins.list[CitedPassage]]:
        """Answer text → the passages it cited (the latest, should one text repeat)."""
        ...


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]


def thread_title(question: str) -> str:
    """A thread is listed by its first question, on one line."""
    return " ".join(question.split())[:80]


class ThreadStore:
    """Threads in a SQLite file."""

    def __init__(self, path: Path) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:  # a store from before knowledge bases: its threads get theirs (`adopt`)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(kb_threads)")}
            if columns and "kb" not in columns:
                self._db.execute("ALTER TABLE kb_threads ADD COLUMN kb TEXT NOT NULL DEFAULT ''")
        self._db.executescript(SCHEMA)
        self.checkpointer = SqliteSaver(self._db)
        self.checkpointer.setup()

    def new_thread(self) -> str:
        return new_thread_id()

    def touch(self, thread_id: str, question: str, model: str, kb: str = "") -> None:
        now = time.time()
        title = thread_title(question)
        with self.checkpointer.lock, self._db:  # the connection is shared with the checkpointer
            self._db.execute(
                f"INSERT INTO kb_threads ({THREAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(thread_id) DO UPDATE SET updated_at = excluded.updated_at, model = excluded.model",
                (thread_id, title, model, now, now, kb),
            )

    def get(self, thread_id: str) -> ThreadInfo | None:
        with self.checkpointer.lock:
            row = self._db.execute(f"SELECT {THREAD_COLUMNS} FROM kb_threads WHERE thread_id = ?", (thread_id,))
            found = row.fetchone()
        return ThreadInfo(*found) if found else None

    def list(self, limit: int = 100, kb: str | None = None) -> list[ThreadInfo]:
        where, params = ("WHERE kb = ?", [kb]) if kb is not None else ("", [])
        with self.checkpointer.lock:
            rows = self._db.execute(
                f"SELECT {THREAD_COLUMNS} FROM kb_threads {where} ORDER BY updated_at DESC LIMIT ?", [*params, limit]
            ).fetchall()
        return [ThreadInfo(*row) for row in rows]

    def delete(self, thread_id: str) -> None:
        self.checkpointer.delete_thread(thread_id)
        with self.checkpointer.lock, self._db:
            self._db.execute("DELETE FROM kb_threads WHERE thread_id = ?", (thread_id,))
            self._db.execute("DELETE FROM kb_thread_sources WHERE thread_id = ?", (thread_id,))

    def keep_sources(self, thread_id: str, answer: str, cited: Sequence[CitedPassage]) -> None:
        with self.checkpointer.lock, self._db:
            self._db.execute(
                "INSERT INTO kb_thread_sources VALUES (?, ?, ?, ?)",
                (thread_id, answer.strip(), json.dumps(list(cited)), time.time()),
            )

    def sources(self, thread_id: str) -> dict[str, builtins.list[CitedPassage]]:
        with self.checkpointer.lock:
            rows = self._db.execute(
                "SELECT answer, cited FROM kb_thread_sources WHERE thread_id = ? ORDER BY saved_at", (thread_id,)
            ).fetchall()
        return {answer: json.loads(cited) for answer, cited in rows}

    def adopt(self, kb: str) -> int:
        """Threads from before knowledge bases belong to `kb`, the data dir's first one; how many there were."""
        with self.checkpointer.lock, self._db:
            return self._db.execute("UPDATE kb_threads SET kb = ? WHERE kb = ''", (kb,)).rowcount

    def close(self) -> None:
        self._db.close()


class PostgresThreadStore:
    """Threads in PostgreSQL: LangGraph's Postgres checkpointer and the same thread list, in the global schema, so
    a conversation started on one replica continues on any other."""

    def __init__(self, url: str, schema: str) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        from knowledge_base.postgres import Database, lock_key

        self._db = Database(url, schema, max_size=4, schema_sql="")
        # The checkpointer wants autocommit connections that return rows as dicts: a pool of its own.
        self._pool = self._db.extra_pool(autocommit=True, prepare_threshold=0, row_factory=dict_row)
        self.checkpointer = PostgresSaver(self._pool)  # type: ignore[arg-type]
        # Two replicas starting at once would both run the checkpointer's migrations: one waits instead, on a
        # session lock (its migrations build indexes CONCURRENTLY, which would wait for an open transaction).
        with self._db.connect(autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [lock_key(f"kbagent-threads:{schema}")])
            conn.execute(SCHEMA)
            self.checkpointer.setup()

    def new_thread(self) -> str:
        return new_thread_id()

    def touch(self, thread_id: str, question: str, model: str, kb: str = "") -> None:
        now = time.time()
        title = thread_title(question)
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO kb_threads ({THREAD_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id) "
                "DO UPDATE SET updated_at = EXCLUDED.updated_at, model = EXCLUDED.model",
                (thread_id, title, model, now, now, kb),
            )

    def add(self, info: ThreadInfo, cited: dict[str, builtins.list[CitedPassage]] | None = None) -> None:
        """List a thread copied from elsewhere (`copy_threads`), as it was listed there, with its answers' sources."""
        with self._db.transaction() as conn:
            conn.execute(
                f"INSERT INTO kb_threads ({THREAD_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (thread_id) DO NOTHING",
                (info.thread_id, info.title, info.model, info.created_at, info.updated_at, info.kb),
            )
            for answer, passages in (cited or {}).items():
                self.keep_sources(info.thread_id, answer, passages)

    def get(self, thread_id: str) -> ThreadInfo | None:
        with self._db.connection() as conn:
            found = conn.execute(
                f"SELECT {THREAD_COLUMNS} FROM kb_threads WHERE thread_id = %s", (thread_id,)
            ).fetchone()
        return ThreadInfo(*found) if found else None

    def list(self, limit: int = 100, kb: str | None = None) -> list[ThreadInfo]:
        where, params = ("WHERE kb = %s", [kb]) if kb is not None else ("", [])
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT {THREAD_COLUMNS} FROM kb_threads {where} ORDER BY updated_at DESC LIMIT %s", [*params, limit]
            ).fetchall()
        return [ThreadInfo(*row) for row in rows]

    def delete(self, thread_id: str) -> None:
        self.checkpointer.delete_thread(thread_id)
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM kb_threads WHERE thread_id = %s", (thread_id,))
            conn.execute("DELETE FROM kb_thread_sources WHERE thread_id = %s", (thread_id,))

    def keep_sources(self, thread_id: str, answer: str, cited: Sequence[CitedPassage]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO kb_thread_sources VALUES (%s, %s, %s, %s)",
                (thread_id, answer.strip(), json.dumps(list(cited)), time.time()),
            )

    def sources(self, thread_id: str) -> dict[str, builtins.list[CitedPassage]]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT answer, cited FROM kb_thread_sources WHERE thread_id = %s ORDER BY saved_at", (thread_id,)
            ).fetchall()
        return {answer: json.loads(cited) for answer, cited in rows}

    def adopt(self, kb: str) -> int:
        """Moves the conversations a knowledge base's own schema held (before they moved to the global schema)
        into this store, as that knowledge base's: rows copied, then the old tables dropped, in one transaction,
        so a move cut short is redone whole by the next start. How many threads moved."""
        from psycopg import sql

        from knowledge_base.postgres import lock_key

        with self._db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key("kbagent-adopt-threads")])  # one replica at once
            if conn.execute("SELECT to_regclass(%s)", [f'"{kb}".kb_threads']).fetchone()[0] is None:  # type: ignore[index]
                return 0
            for table in LEGACY_TABLES:
                columns = [
                    row[0]
                    for row in conn.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_schema = %s AND table_name = %s",
                        [kb, table],
                    )
                ]
                names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                conn.execute(
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}.{} ON CONFLICT DO NOTHING").format(
                        sql.Identifier(table), names, names, sql.Identifier(kb), sql.Identifier(table)
                    )
                )
            moved = conn.execute(
                sql.SQL(
                    "INSERT INTO kb_threads (thread_id, title, model, created_at, updated_at, kb) "
                    "SELECT thread_id, title, model, created_at, updated_at, %s FROM {}.kb_threads "
                    "ON CONFLICT DO NOTHING"
                ).format(sql.Identifier(kb)),
                [kb],
            ).rowcount
            for table in ("kb_threads", *LEGACY_TABLES, "checkpoint_migrations"):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(kb), sql.Identifier(table)))
        return moved

    def close(self) -> None:
        self._pool.close()
        self._db.close()


def copy_threads(source: Threads, target: PostgresThreadStore, kb: str | None = None) -> tuple[int, int]:
    """Every conversation of `source` (of knowledge base `kb`, or all) that `target` doesn't list yet: its
    checkpoints, oldest first, with their pending writes, then its entry in the list (last, so an interrupted copy
    is redone by the next run). Returns (threads copied, threads already there)."""
    present = {t.thread_id for t in target.list(limit=1 << 62)}
    copied = already = 0
    for info in source.list(limit=1 << 62, kb=kb):
        if info.thread_id in present:
            already += 1
            continue
        for saved in reversed(list(source.checkpointer.list({"configurable": {"thread_id": info.thread_id}}))):
            where = saved.config["configurable"]
            config: dict[str, str] = {"thread_id": where["thread_id"], "checkpoint_ns": where.get("checkpoint_ns", "")}
            if saved.parent_config:
                config["checkpoint_id"] = saved.parent_config["configurable"]["checkpoint_id"]
            versions = saved.checkpoint["channel_versions"]  # every channel's blob, not only the last step's
            target.checkpointer.put({"configurable": config}, saved.checkpoint, saved.metadata, versions)
            by_task: dict[str, list[tuple[str, object]]] = {}
            for task_id, channel, value in saved.pending_writes or []:
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                target.checkpointer.put_writes(saved.config, writes, task_id)
        target.add(info, source.sources(info.thread_id))
        copied += 1
    return copied, already
