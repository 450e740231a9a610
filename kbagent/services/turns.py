"""What the chat showed with each answer (its tool calls and sources), kept so a reopened conversation shows them
again: the agent's memory keeps only the text. One SQLite file beside the threads.

A search's tool call is kept with its passages (the tool's artifact), so it shows again as it did; rows written
before passages were kept have only the tool's text, which shows as text."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.knowledge_search import Passage
from tools.web_search import WebResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_turns (
    thread_id TEXT NOT NULL,
    answer    TEXT NOT NULL,
    shown     TEXT NOT NULL,
    saved_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_turns_thread ON chat_turns (thread_id);
"""


@dataclass
class ToolCall:
    """One tool call as the chat shows it: its input, then its output, and for a search the passages it found."""

    call_id: str
    name: str
    args: dict[str, object]
    started: float = field(default_factory=time.perf_counter)
    output: str | None = None
    seconds: float | None = None
    ok: bool = True
    passages: list[Passage] | None = None
    step: str = ""  # what the chat says while it runs

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "started"}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ToolCall:
        """A kept call; one kept before passages were (no "passages"), with its text alone."""
        passages = raw.get("passages")
        fields = {k: v for k, v in raw.items() if k in ("call_id", "name", "args", "output", "seconds", "ok", "step")}
        return cls(**fields, passages=None if passages is None else [Passage(**p) for p in passages])


@dataclass
class Turn:
    """One answer's tool calls, its cited and retrieved passages, and its web search results."""

    tools: list[ToolCall] = field(default_factory=list)
    cited: list[Passage] = field(default_factory=list)
    retrieved: list[Passage] = field(default_factory=list)
    web: list[WebResult] = field(default_factory=list)

    def dumps(self) -> str:
        return json.dumps(
            {
                "tools": [call.as_dict() for call in self.tools],
                "cited": [asdict(p) for p in self.cited],
                "retrieved": [asdict(p) for p in self.retrieved],
                "web": [r.as_dict() for r in self.web],
            }
        )

    @classmethod
    def loads(cls, text: str) -> Turn:
        raw = json.loads(text)
        passages = {key: [Passage(**p) for p in raw.get(key, [])] for key in ("cited", "retrieved")}
        tools = [ToolCall.from_dict(call) for call in raw.get("tools", [])]
        web = [WebResult(**r) for r in raw.get("web", [])]  # turns saved before web search have none
        return cls(tools, passages["cited"], passages["retrieved"], web)


class TurnLog:
    """Turns by thread and answer text (the agent's history gives the text back, so it is the key)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def save(self, thread_id: str, answer: str, turn: Turn) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO chat_turns VALUES (?, ?, ?, ?)", (thread_id, answer.strip(), turn.dumps(), time.time())
            )

    def of(self, thread_id: str) -> dict[str, Turn]:
        """Answer text → what was shown with it (the latest, should one text repeat)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT answer, shown FROM chat_turns WHERE thread_id = ? ORDER BY saved_at", (thread_id,)
            ).fetchall()
        return {answer: Turn.loads(shown) for answer, shown in rows}

    def passage_text(self, chunk_id: str) -> str:
        """The text of the passage `chunk_id` as the latest answer that was given it saw it, or "": what an old
        citation's address falls back to once its chunk is gone (the file edited and ingested again)."""
        if not chunk_id:
            return ""
        with self._lock:
            rows = self._db.execute(
                "SELECT shown FROM chat_turns WHERE instr(shown, ?) > 0 ORDER BY saved_at DESC LIMIT 20", (chunk_id,)
            ).fetchall()
        for (shown,) in rows:
            turn = Turn.loads(shown)
            for passage in [*turn.cited, *turn.retrieved]:
                if passage.chunk_id == chunk_id:
                    return passage.text
        return ""

    def delete(self, thread_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM chat_turns WHERE thread_id = ?", (thread_id,))

    def close(self) -> None:
        self._db.close()
