"""What the agent tells its caller while it answers. The CLI prints these; the UI renders them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from kbagent.errors import AnswerError


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
    artifact: Any = None  # what the tool gave besides its text (web results, an outside call's record)


@dataclass
class Sources:
    """The passages behind an answer (`tools.knowledge_search.Passage`): those its text cites as [n], and apart
    from them those the tools retrieved that it does not cite, which must never be shown as citations; and the
    web search results the answer was given (`tools.web_search.WebResult`), web sources apart from passages."""

    cited: list[Any] = field(default_factory=list)
    retrieved: list[Any] = field(default_factory=list)  # retrieved and not cited
    web: list[Any] = field(default_factory=list)


@dataclass
class Unsupported:
    """A sentence of the answer whose key claims (numbers, dates, amounts, names) occur in no passage or tool
    result the agent saw: shown marked, never as a fact the sources back."""

    sentence: str
    claims: list[str]


@dataclass
class Support:
    """Which spans of which cited passages back a sentence of the answer (`agent.support`): passage number →
    (start, end) character spans in that passage's text, for the viewer to mark more strongly."""

    sentence: str
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)


@dataclass
class Phase:
    """What the agent does when no words come, so a UI can show it: `step` is "reading" (the model reads
    `passages` passages before it writes) or "checking" (no source backs the answer: the model is asked again)."""

    step: str
    passages: int | None = None


@dataclass
class Done:
    answer: str
    thread_id: str
    model: str
    seconds: float
    prompt_tokens: int | None = None  # as the model reported them; None when it reports none
    completion_tokens: int | None = None
    unsupported: list[Unsupported] = field(default_factory=list)
    # The model's answer when the agent replaced it (its core claim backed by no source); `answer` says why.
    retracted: str = ""


@dataclass
class Error:
    message: str


Event = Token | ToolStart | ToolEnd | Sources | Unsupported | Done | Error | Phase | Support


@dataclass
class Answer:
    """A whole answer folded from its events: what `kbagent ask --json` and the app's API return."""

    answer: str
    thread_id: str
    model: str
    seconds: float
    sources: list[dict[str, Any]]  # the cited passages only
    tools: list[dict[str, Any]]
    retrieved: list[dict[str, Any]] = field(default_factory=list)  # passages retrieved and not cited
    unsupported: list[dict[str, Any]] = field(default_factory=list)  # {"sentence", "claims"}: no source backs it
    retracted: str = ""  # the model's own answer, when the agent replaced it
    web: list[dict[str, Any]] = field(default_factory=list)  # web search results: {"title", "url", "snippet", …}


def fold(events: Iterable[Event], on_event: Callable[[Event], None] | None = None) -> Answer:
    """The answer the events add up to; `on_event` sees each one first (a terminal renderer, say).
    Raises AnswerError when the agent reports an error or stops without an answer."""
    sources: list[dict[str, Any]] = []
    retrieved: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    web: list[dict[str, Any]] = []
    for event in events:
        if on_event is not None:
            on_event(event)
        if isinstance(event, Error):
            raise AnswerError(event.message)
        if isinstance(event, ToolEnd):
            tools.append({"tool": event.name, "seconds": round(event.seconds, 3), "ok": event.ok})
        elif isinstance(event, Sources):
            sources = [p.as_dict() for p in event.cited]
            retrieved = [p.as_dict() for p in event.retrieved]
            web = [r.as_dict() for r in event.web]
        elif isinstance(event, Done):
            seconds = round(event.seconds, 3)
            unsupported = [asdict(u) for u in event.unsupported]
            return Answer(
                event.answer, event.thread_id, event.model, seconds, sources, tools, retrieved, unsupported,
                event.retracted, web,
            )  # fmt: skip
    raise AnswerError("the agent stopped without an answer")
