"""Conversation threads: LangGraph's SQLite checkpointer holds the messages; a small table lists the threads."""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS kb_threads (
    thread_id  TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    model      TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


@dataclass
class ThreadInfo:
    thread_id: str
    title: str
    model: str
    created_at: float
    updated_at: float


class ThreadStore:
    def __init__(self, path: Path) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self.checkpointer: Any = SqliteSaver(self._db)
        self.checkpointer.setup()

    def new_thread(self) -> str:
        return uuid.uuid4().hex[:12]

    def touch(self, thread_id: str, question: str, model: str) -> None:
        now = time.time()
        title = " ".join(question.split())[:80]
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
