"""A conversation people can take with them (`kbagent export`): its questions, its answers as they were shown, and
the passages each answer cited, with their sources and places, as Markdown or JSON."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, HumanMessage

from agent.runner import message_text
from kbagent.errors import UserError

if TYPE_CHECKING:
    from kbagent.components import Components

EXCERPT_CHARS = 300


@dataclass
class Turn:
    question: str
    answer: str = ""
    cited: Sequence[Mapping[str, object]] = field(default_factory=list)  # `Passage.as_dict()`s


@dataclass
class Conversation:
    thread_id: str
    title: str
    knowledge_base: str
    model: str
    created_at: float
    updated_at: float
    turns: list[Turn]

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = asdict(self)
        out["created_at"], out["updated_at"] = _when(self.created_at), _when(self.updated_at)
        return out


def conversation(parts: Components, thread_id: str) -> Conversation:
    """The conversation `thread_id` as its thread store holds it; UserError when there is none."""
    threads = parts.threads
    info = threads.get(thread_id)
    if info is None:
        raise UserError(f"no conversation {thread_id!r} (`kbagent threads --all` lists them)")
    kb = parts.catalog.get(info.kb)
    saved = threads.checkpointer.get_tuple({"configurable": {"thread_id": thread_id}})
    messages = saved.checkpoint["channel_values"].get("messages", []) if saved else []
    cited = threads.sources(thread_id)
    turns: list[Turn] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            turns.append(Turn(message_text(message)))
        elif isinstance(message, AIMessage) and turns and message_text(message).strip() and not message.tool_calls:
            turns[-1].answer = message_text(message).strip()  # the last one: tool-calling turns end with the answer
    for turn in turns:
        turn.cited = [dict(p) for p in cited.get(turn.answer, [])]
    name = kb.name if kb else "(deleted)"
    return Conversation(thread_id, info.title, name, info.model, info.created_at, info.updated_at, turns)


def to_markdown(found: Conversation) -> str:
    lines = [
        f"# {found.title}",
        "",
        f"Knowledge base: {found.knowledge_base} · model: {found.model} · "
        f"{_when(found.created_at)} to {_when(found.updated_at)} · conversation {found.thread_id}",
    ]
    for n, turn in enumerate(found.turns, start=1):
        lines += ["", f"## Question {n}", "", *_quoted(turn.question), "", "### Answer", "", turn.answer or "(none)"]
        if turn.cited:
            lines += ["", "### Sources", ""]
            for passage in turn.cited:
                lines.append(f"- {_label(passage)}")
                lines += [f"  {line}" for line in _quoted(_excerpt(str(passage.get("text", ""))))]
    return "\n".join(lines) + "\n"


def _label(passage: Mapping[str, object]) -> str:
    where = str(passage.get("source", "")) + (f" ({passage['location']})" if passage.get("location") else "")
    title = passage.get("title") or ""
    return f"[{passage.get('n')}] {title} — {where}" if title else f"[{passage.get('n')}] {where}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + " …"


def _quoted(text: str) -> list[str]:
    return [f"> {line}" for line in text.splitlines() or [""]]


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
