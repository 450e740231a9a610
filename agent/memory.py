"""Conversation threads: LangGraph's checkpointer holds the messages; a small table lists the threads.

In SQLite beside the store (one machine), or in the knowledge base's PostgreSQL schema, where every replica
reads and continues the same conversations (`KBAGENT_DATABASE_URL`).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_threads (
    thread_id  TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
"""


@dataclass
class ThreadInfo:
    thread_id: str
    title: str
    model: str
    created_at: float
    updated_at: float


class Threads(Protocol):
    """What the agent and the app use: the checkpointer, and the list of threads with their titles."""

    checkpointer: Any

    def new_thread(self) -> str: ...
    def touch(self, thread_id: str, question: str, model: str) -> None: ...
    def delete(self, thread_id: str) -> None: ...
    def close(self) -> None: ...
    def list(self, limit: int = 100) -> list[ThreadInfo]: ...


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
        self._db.executescript(SCHEMA)
        self.checkpointer: Any = SqliteSaver(self._db)
        self.checkpointer.setup()

    def new_thread(self) -> str:
        return new_thread_id()

    def touch(self, thread_id: str, question: str, model: str) -> None:
        now = time.time()
        title = thread_title(question)
        with self.checkpointer.lock, self._db:  # the connection is shared with the checkpointer
            self._db.execute(
                "INSERT INTO kb_threads VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(thread_id) DO UPDATE SET updated_at = excluded.updated_at, model = excluded.model",
                (thread_id, title, model, now, now),
            )

    def list(self, limit: int = 100) -> list[ThreadInfo]:
        with self.checkpointer.lock:
            rows = self._db.execute("SELECT * FROM kb_threads ORDER BY updated_at DESC LIMIT ?", (limit,)).fetchall()
        return [ThreadInfo(*row) for row in rows]

    def delete(self, thread_id: str) -> None:
        self.checkpointer.delete_thread(thread_id)
        with self.checkpointer.lock, self._db:
            self._db.execute("DELETE FROM kb_threads WHERE thread_id = ?", (thread_id,))

    def close(self) -> None:
        self._db.close()


class PostgresThreadStore:
    """Threads in PostgreSQL: LangGraph's Postgres checkpointer and the same thread list, in the knowledge base's
    schema, so a conversation started on one replica continues on any other."""

    def __init__(self, url: str, schema: str) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        from knowledge_base.postgres import Database, lock_key

        self._db = Database(url, schema, max_size=4)
        # The checkpointer wants autocommit connections that return rows as dicts: a pool of its own.
        self._pool = self._db.extra_pool(autocommit=True, prepare_threshold=0, row_factory=dict_row)
        self.checkpointer: Any = PostgresSaver(self._pool)  # type: ignore[arg-type]
        # Two replicas starting at once would both run the checkpointer's migrations: one waits instead, on a
        # session lock (its migrations build indexes CONCURRENTLY, which would wait for an open transaction).
        with self._db.connect(autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [lock_key(f"kbagent-threads:{schema}")])
            conn.execute(SCHEMA)
            self.checkpointer.setup()

    def new_thread(self) -> str:
        return new_thread_id()

    def touch(self, thread_id: str, question: str, model: str) -> None:
        now = time.time()
        title = thread_title(question)
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO kb_threads VALUES (%s, %s, %s, %s, %s) ON CONFLICT (thread_id) "
                "DO UPDATE SET updated_at = EXCLUDED.updated_at, model = EXCLUDED.model",
                (thread_id, title, model, now, now),
            )

    def add(self, info: ThreadInfo) -> None:
        """List a thread copied from elsewhere (`copy_threads`), as it was listed there."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO kb_threads VALUES (%s, %s, %s, %s, %s) ON CONFLICT (thread_id) DO NOTHING",
                (info.thread_id, info.title, info.model, info.created_at, info.updated_at),
            )

    def list(self, limit: int = 100) -> list[ThreadInfo]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM kb_threads ORDER BY updated_at DESC LIMIT %s", (limit,)).fetchall()
        return [ThreadInfo(*row) for row in rows]

    def delete(self, thread_id: str) -> None:
        self.checkpointer.delete_thread(thread_id)
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM kb_threads WHERE thread_id = %s", (thread_id,))

    def close(self) -> None:
        self._pool.close()
        self._db.close()


def copy_threads(source: ThreadStore, target: PostgresThreadStore) -> tuple[int, int]:
    """Every conversation of `source` that `target` doesn't list yet: its checkpoints, oldest first, with their
    pending writes, then its entry in the list (last, so an interrupted copy is redone by the next run).
    Returns (threads copied, threads already there)."""
    present = {t.thread_id for t in target.list(limit=1 << 62)}
    copied = already = 0
    for info in source.list(limit=1 << 62):
        if info.thread_id in present:
            already += 1
            continue
        for saved in reversed(list(source.checkpointer.list({"configurable": {"thread_id": info.thread_id}}))):
            where = saved.config["configurable"]
            config: dict[str, Any] = {"thread_id": where["thread_id"], "checkpoint_ns": where.get("checkpoint_ns", "")}
            if saved.parent_config:
                config["checkpoint_id"] = saved.parent_config["configurable"]["checkpoint_id"]
            versions = saved.checkpoint["channel_versions"]  # every channel's blob, not only the last step's
            target.checkpointer.put({"configurable": config}, saved.checkpoint, saved.metadata, versions)
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in saved.pending_writes or []:
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                target.checkpointer.put_writes(saved.config, writes, task_id)
        target.add(info)
        copied += 1
    return copied, already
