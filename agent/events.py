"""What the agent tells its caller while it answers. The CLI prints these; the UI renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Token:
    text: str


@dataclass
class ToolStart:
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass
class ToolEnd:
    call_id: str
    name: str
    output: str
    seconds: float
    ok: bool = True


@dataclass
class Sources:
    passages: list[Any] = field(default_factory=list)  # tools.knowledge_search.Passage, cited ones


@dataclass
class Done:
    answer: str
    thread_id: str
    model: str
    seconds: float


@dataclass
class Error:
    message: str


Event = Token | ToolStart | ToolEnd | Sources | Done | Error
