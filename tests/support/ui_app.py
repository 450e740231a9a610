"""The app for the UI tests and the load benchmark: real Chroma and embeddings, a scripted model that always cites.

`CitingModel` answers any number of questions, from any number of threads at once: it calls
`search_knowledge_base` first, then answers with the first sentence of passage [1], citing it. A question that
says "slowly" gets a long answer, one word every `slow_s`; one that says "at length" a very long one at once (a
client to hang up on, or to stop reading); `extra` goes into every answer (a remote image, say).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic import Field

from agent.models import ModelChoice
from kbagent.components import Components
from kbagent.settings import Settings
from tests.support.scripted_model import ScriptedChatModel, tool_call

NOT_FOUND = "I couldn't find that in the knowledge base."
MODELS = [
    ModelChoice("openai:scripted", True, "a scripted test model"),
    ModelChoice("anthropic:<model>", False, "no ANTHROPIC_API_KEY"),
]

DOCS = {
    "ferries.md": "# Ferry timetable\n\nThe first ferry to Skerry Island leaves at 07:40 from Pier 9. A return ticket "
    "costs 14 euros and bikes travel free on weekdays.\n",
    "bakery.md": "# Harbour bakery\n\nThe harbour bakery sells cardamom buns for 3.50 each and opens at six.\n",
    "workshop.md": "# Repair workshop\n\nThe community repair workshop lends torque wrenches and truing stands. "
    "Members book a bench by the hour; a bench costs 4 euros per hour.\n",
}


SLOW_WORDS = 600
LONG_WORDS = 40_000


class CitingModel(ScriptedChatModel):
    think_s: float = 0.0  # a pause before an answer's first word, as a local model reads its prompt
    slow_s: float = 0.5  # between the words of an answer to a question that says "slowly"
    extra: str = ""  # put into every answer, after its first words
    calls: list[dict[str, Any]] = Field(default_factory=list)  # each streamed call's arguments (temperature, …)
    words: list[int] = Field(default_factory=lambda: [0])  # words streamed so far, all answers together

    def _stream(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.calls.append({k: v for k, v in kwargs.items() if k != "run_manager"})
        answering = isinstance(messages[-1], ToolMessage)
        if self.think_s and answering:
            time.sleep(self.think_s)
        asked = _question(messages)
        if answering and ("slowly" in asked or "at length" in asked):
            yield from self._long(kwargs.get("run_manager"), "slowly" in asked)
            return
        for chunk in super()._stream(messages, *args, **kwargs):
            self.words[0] += 1
            yield chunk

    def _long(self, run_manager: Any, slowly: bool) -> Iterator[Any]:
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        for n in range(SLOW_WORDS if slowly else LONG_WORDS):
            if slowly:
                time.sleep(self.slow_s)
            piece = "The" if n == 0 else " word"
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            self.words[0] += 1
            yield chunk

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            return tool_call(
                "search_knowledge_base", {"query": str(last.content)[:200]}, f"call-{uuid.uuid4().hex[:8]}"
            )
        if isinstance(last, ToolMessage):
            match = re.search(
                r"^\[1\][^\n]*\n(.*?)(?:\n\n\[\d+\]|\n</retrieved_passages>)",
                str(last.content),
                re.MULTILINE | re.DOTALL,
            )
            if not match:
                return AIMessage(NOT_FOUND)
            body = match.group(1).strip().split("\n", 1)[-1]  # past the chunk's context header line
            sentence = best_sentence(body, _question(messages))
            return AIMessage(f"According to the knowledge base: {self.extra}{sentence} [1]")
        return AIMessage("(no question)")


def _question(messages: list[BaseMessage]) -> str:
    return next((str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), "")


def best_sentence(text: str, question: str) -> str:
    """The line or sentence sharing most words with the question (the first one on a tie), Markdown dropped."""
    words = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3}
    pieces = [p for line in text.splitlines() for p in re.split(r"(?<=[.!?])\s+", line)]
    pieces = [re.sub(r"\s*\|\s*", ", ", p.replace("**", "")).strip(" ,-") for p in pieces]
    pieces = [p for p in pieces if p and not set(p) <= set(", -:")]
    return max(pieces, key=lambda x: len(words & set(re.findall(r"\w+", x.lower()))), default="")


def write_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@dataclass
class RunningApp:
    url: str
    demo: Any
    parts: Components
    svc: Any = None  # kbagent.services.operations.Services
    model: Any = None  # the CitingModel answering

    @property
    def kb(self) -> Any:
        return self.parts.kb

    @property
    def settings(self) -> Settings:
        return self.parts.settings


@contextmanager
def running_app(
    settings: Settings,
    embedder: Any = None,
    delay_s: float = 0.0,
    docs: Sequence[Path] = (),
    think_s: float = 0.0,
    extra: str = "",
    ways_in: bool = False,
    model: CitingModel | None = None,
    **launch: Any,
) -> Iterator[RunningApp]:
    """The app in this process, on a free loopback port, until the block ends: its parts built as the app builds
    them, with the scripted model (tool calling, like an API model) and `docs` ingested first. `ways_in`: with
    the OpenAI-compatible API (/v1) and MCP (/mcp) beside it, on the same services. `model`: another scripted
    model in the CitingModel's place."""
    import app as web_app
    from kbagent.services.operations import Services
    from tests.support.servers import free_port

    settings = settings.override(host="127.0.0.1", port=free_port(), model="openai:scripted", tool_calling="on")
    model = model or CitingModel(delay_s=delay_s, think_s=think_s, extra=extra)
    with Components(settings, embedder=embedder, chat_model=model) as parts:
        if docs:
            parts.ingest(docs)
        svc = Services(parts, MODELS)
        demo = web_app.build_app(parts, models=MODELS, svc=svc)
        url = f"http://{settings.app.host}:{settings.app.port}"
        served = web_app.ways_in(svc, settings.override(mcp=ways_in, openai_api=ways_in), url)
        _, url, _ = web_app.launch(demo, settings, served, prevent_thread_lock=True, quiet=True, **launch)
        try:
            yield RunningApp(url.rstrip("/"), demo, parts, svc, model)
        finally:
            demo.close()
