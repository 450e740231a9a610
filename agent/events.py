"""What the agent tells its caller while it answers. The CLI prints these; the UI renders them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TypeAlias

from kbagent.errors import AnswerError
from tools.knowledge_search import Passage
from tools.web_search import WebResult

JsonValue: TypeAlias = str | int | float | bool | Sequence["JsonValue"] | Mapping[str, "JsonValue"] | None
"""Data as JSON holds it (read-only views, so a `dict[str, float]` is one too)."""
ToolArgs: TypeAlias = dict[str, object]
"""A tool call's arguments, as the model gave them: passed through to the tool, which checks them."""


@dataclass
class Token:
    text: str


@dataclass
class ToolStart:
    call_id: str
    name: str
    args: ToolArgs
    step: str = ""
    """What a front end shows while it runs (`AgentTool.step`); empty: "Running NAME…"."""


@dataclass
class ToolEnd:
    call_id: str
    name: str
    output: str
    seconds: float
    ok: bool = True
    passages: list[Passage] | None = None
    """What a search found, as data (the tool's artifact); None for a tool whose text is its result."""
    artifact: object = None
    """Another tool's result as data (`content_and_artifact`): web results, an outside call's record."""


@dataclass
class Sources:
    """The passages behind an answer: those its text cites as [n], and apart from them those the tools retrieved
    that it does not cite, which must never be shown as citations; and the web search results the answer was
    given, web sources apart from passages."""

    cited: list[Passage] = field(default_factory=list)
    retrieved: list[Passage] = field(default_factory=list)  # retrieved and not cited
    web: list[WebResult] = field(default_factory=list)


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
class ToolUse:
    """One tool call of an answer, as `Answer` reports it."""

    tool: str
    seconds: float
    ok: bool


@dataclass
class Answer:
    """A whole answer folded from its events: what `kbagent ask --json` and the app's API return (`asdict`)."""

    answer: str
    thread_id: str
    model: str
    seconds: float
    sources: list[Passage]  # the cited passages only
    tools: list[ToolUse]
    retrieved: list[Passage] = field(default_factory=list)  # passages retrieved and not cited
    unsupported: list[Unsupported] = field(default_factory=list)  # sentences no source backs
    retracted: str = ""  # the model's own answer, when the agent replaced it
    web: list[WebResult] = field(default_factory=list)  # the web search results the answer was given

    def as_dict(self) -> dict[str, JsonValue]:
        return asdict(self)


def fold(events: Iterable[Event], on_event: Callable[[Event], None] | None = None) -> Answer:
    """The answer the events add up to; `on_event` sees each one first (a terminal renderer, say).
    Raises AnswerError when the agent reports an error or stops without an answer."""
    sources: list[Passage] = []
    retrieved: list[Passage] = []
    tools: list[ToolUse] = []
    web: list[WebResult] = []
    for event in events:
        if on_event is not None:
            on_event(event)
        if isinstance(event, Error):
            raise AnswerError(event.message)
        if isinstance(event, ToolEnd):
            tools.append(ToolUse(event.name, round(event.seconds, 3), event.ok))
        elif isinstance(event, Sources):
            sources, retrieved, web = list(event.cited), list(event.retrieved), list(event.web)
        elif isinstance(event, Done):
            seconds = round(event.seconds, 3)
            return Answer(
                event.answer, event.thread_id, event.model, seconds, sources, tools, retrieved, list(event.unsupported),
                event.retracted, web,
            )  # fmt: skip
    raise AnswerError("the agent stopped without an answer")
