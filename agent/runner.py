"""The agent loop: one `Agent.stream(question, thread_id)` yielding events, whichever path answers.

Models that call tools reliably run LangChain's `create_agent`. Small local models take the retrieval-first
path: the knowledge base is always searched, the scraper runs when the question holds a URL and the
calculator when it holds arithmetic, then the model answers from those results. Both paths keep their
history in the same SQLite checkpointer, and emit the same events, so callers never see the difference.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agent import prompts
from agent.config import AgentConfig
from agent.events import Answer, Done, Error, Event, Phase, Sources, Token, ToolEnd, ToolStart, fold
from agent.memory import ThreadStore
from agent.models import ModelSpec, uses_tool_calling
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions
from tools.calculator import CalculatorError, calculate, describe, make_calculator_tool
from tools.excerpts import focus
from tools.knowledge_search import Passage, Passages, format_passages, make_search_tool, search_passages
from tools.scraper import make_scrape_tool

URL = re.compile(r"https?://[^\s<>\"')\]]+")
ARITHMETIC = re.compile(r"\d[\d,.]*\s*%\s*of\s*\d[\d,.]*|[(\d][\d\s,.()]*(?:[-+*/×÷^]|\*\*)[\d\s,.()+\-*/×÷^%]*[\d)%]")
HISTORY_MESSAGES = 6


@dataclass
class TurnContext:
    """Per-answer state the tools share (LangChain runtime context)."""

    passages: Passages = field(default_factory=Passages)


def message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


class Agent:
    """Answers questions with the parts it is given (see `kbagent.components`); builds none of them."""

    def __init__(
        self,
        config: AgentConfig,
        kb: KnowledgeBase,
        model: Any,
        spec: ModelSpec,
        threads: ThreadStore,
        scraper: Callable[[str], str] | None = None,
        search_options: SearchOptions | None = None,
    ) -> None:
        self.config = config
        self.kb = kb
        self.spec = spec
        self.model = model
        self.scraper = scraper
        self.threads = threads
        self.search_options = search_options or kb.default_options()
        self.tool_calling = uses_tool_calling(config, spec)
        self.tools = [
            make_search_tool(kb, config.k, config.min_similarity, self.search_options),
            make_calculator_tool(),
        ]
        if scraper is not None:
            self.tools.append(make_scrape_tool(scraper))
        self.graph = self._tool_graph() if self.tool_calling else self._retrieval_first_graph()

    # ---- the two graphs ----------------------------------------------------------------------------

    def _tool_graph(self) -> Any:
        from langchain.agents import create_agent

        return create_agent(
            self.model,
            self.tools,
            system_prompt=prompts.TOOL_AGENT,
            checkpointer=self.threads.checkpointer,
            context_schema=TurnContext,
        )

    def _retrieval_first_graph(self) -> Any:
        from langgraph.config import get_stream_writer
        from langgraph.graph import START, MessagesState, StateGraph
        from langgraph.runtime import Runtime

        def answer(state: MessagesState, runtime: Runtime[TurnContext]) -> dict[str, list[BaseMessage]]:
            emit = get_stream_writer()
            question = message_text(state["messages"][-1])
            registry = runtime.context.passages
            found = self._run_tool(
                emit,
                "search_knowledge_base",
                {"query": question},
                lambda: search_passages(
                    self.kb,
                    registry,
                    question,
                    self.config.k,
                    min_similarity=self.config.min_similarity,
                    options=self.search_options,
                ),
                format_passages,
            )
            results = []
            for url in dict.fromkeys(URL.findall(question)):
                if self.scraper is not None:
                    page = self._run_tool(emit, "scrape_webpage", {"url": url}, partial(self.scraper, url), str)
                    results.append(f"Web page {url}:\n{page}")
            for expression in arithmetic_in(question):
                value = self._run_tool(
                    emit, "calculator", {"expression": expression}, partial(describe, expression), str
                )
                results.append(value)
            if not found and not results:
                emit({"token": prompts.NOT_FOUND})
                return {"messages": [AIMessage(prompts.NOT_FOUND)]}
            history: list[BaseMessage] = [m for m in state["messages"][:-1] if isinstance(m, HumanMessage | AIMessage)]
            emit({"phase": Phase("reading", len(found))})
            reply = self.model.invoke(self.answer_messages(question, found, results, history))
            return {"messages": [AIMessage(message_text(reply))]}

        graph = StateGraph(MessagesState, context_schema=TurnContext)
        graph.add_node("answer", answer)
        graph.add_edge(START, "answer")
        return graph.compile(checkpointer=self.threads.checkpointer)

    def answer_messages(
        self, question: str, found: list[Passage], results: list[str], history: list[BaseMessage] | None = None
    ) -> list[BaseMessage]:
        """The retrieval-first prompt: the fixed system prompt first (llama.cpp reuses its cached state),
        then recent turns, then the passages cut to what bears on the question, and the question."""
        excerpts = focus(self.kb.embedder, question, [p.text for p in found], self.config.context_chars)
        return [
            SystemMessage(prompts.RETRIEVAL_FIRST),
            *[type(m)(message_text(m)) for m in (history or [])[-HISTORY_MESSAGES:]],
            HumanMessage(
                prompts.retrieval_first_message(question, format_passages(found, compact=True, texts=excerpts), results)
            ),
        ]

    @staticmethod
    def _run_tool(
        emit: Callable[[Any], None],
        name: str,
        args: dict[str, Any],
        call: Callable[[], Any],
        show: Callable[[Any], str],
    ) -> Any:
        call_id = f"rf-{uuid.uuid4().hex[:8]}"
        emit({"tool_start": ToolStart(call_id, name, args)})
        start = time.perf_counter()
        try:
            result = call()
        except Exception as exc:  # a failing tool is reported, and the answer goes on without it
            emit(
                {
                    "tool_end": ToolEnd(
                        call_id, name, f"{type(exc).__name__}: {exc}", time.perf_counter() - start, ok=False
                    )
                }
            )
            return [] if name == "search_knowledge_base" else f"{name} failed: {exc}"
        emit({"tool_end": ToolEnd(call_id, name, show(result), time.perf_counter() - start)})
        return result

    # ---- streaming -----------------------------------------------------------------------------------

    def stream(self, question: str, thread_id: str | None = None) -> Iterator[Event]:
        thread_id = thread_id or self.threads.new_thread()
        self.threads.touch(thread_id, question, self.spec.label)
        context = TurnContext()
        started: dict[str, tuple[str, float]] = {}
        answer: list[str] = []
        usage: dict[str, int] = {}
        start = time.perf_counter()
        config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 12}
        try:
            for mode, chunk in self.graph.stream(
                {"messages": [HumanMessage(question)]},
                config,
                context=context,
                stream_mode=["messages", "updates", "custom"],
            ):
                _count_usage(mode, chunk, usage)
                for event in self._events(mode, chunk, started):
                    if isinstance(event, Token):
                        answer.append(event.text)
                    yield event
        except Exception as exc:
            yield Error(_describe(exc))
            return
        text = "".join(answer).strip()
        if not text:  # a model that doesn't stream
            text = self._last_answer(thread_id)
            yield Token(text)
        cited = context.passages.cited_in(text)
        numbers = {p.n for p in cited}
        yield Sources(cited, [p for p in context.passages.all() if p.n not in numbers])
        seconds = time.perf_counter() - start
        yield Done(text, thread_id, self.spec.label, seconds, usage.get("input_tokens"), usage.get("output_tokens"))

    def _events(self, mode: str, chunk: Any, started: dict[str, tuple[str, float]]) -> Iterator[Event]:
        if mode == "custom":
            if "token" in chunk:
                yield Token(chunk["token"])
            elif "phase" in chunk:
                yield chunk["phase"]
            else:
                yield chunk.get("tool_start") or chunk["tool_end"]
        elif mode == "messages":
            message, _meta = chunk
            # Only streamed chunks: whole messages repeat text already streamed (or are handled in `stream`).
            if isinstance(message, AIMessageChunk):
                text = message_text(message)
                if text:
                    yield Token(text)
        elif mode == "updates":
            for update in chunk.values():
                for message in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                    if isinstance(message, AIMessage):
                        for call in message.tool_calls:
                            call_id = call["id"] or f"call-{uuid.uuid4().hex[:8]}"
                            started[call_id] = (call["name"], time.perf_counter())
                            yield ToolStart(call_id, call["name"], call["args"])
                    elif isinstance(message, ToolMessage):
                        name, t0 = started.pop(message.tool_call_id, (message.name or "tool", time.perf_counter()))
                        ok = getattr(message, "status", "success") != "error"
                        yield ToolEnd(message.tool_call_id, name, message_text(message), time.perf_counter() - t0, ok)

    def _last_answer(self, thread_id: str) -> str:
        history = self.history(thread_id)
        return history[-1][1] if history and history[-1][0] == "assistant" else ""

    def ask(self, question: str, thread_id: str | None = None) -> Answer:
        """The whole answer at once (scripts, the API, tests); raises AnswerError when there is none."""
        return fold(self.stream(question, thread_id))

    def history(self, thread_id: str) -> list[tuple[str, str]]:
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        out = []
        for message in (state.values or {}).get("messages", []):
            if isinstance(message, HumanMessage):
                out.append(("user", message_text(message)))
            elif isinstance(message, AIMessage) and message_text(message).strip():
                out.append(("assistant", message_text(message)))
        return out


def arithmetic_in(text: str) -> list[str]:
    """Expressions in a question worth handing to the calculator (numbers with an operator between them)."""
    found = []
    for match in ARITHMETIC.finditer(URL.sub(" ", text)):
        candidate = match.group(0).strip(" ,.")
        has_operator = re.search(r"\d\s*(?:[-+*/×÷^]|\*\*)\s*[\d(]", candidate) or "of" in candidate
        if has_operator:
            try:
                calculate(candidate)
            except CalculatorError:
                continue
            found.append(candidate)
    return found


def _count_usage(mode: str, chunk: Any, usage: dict[str, int]) -> None:
    """Adds the token counts a streamed message reports (API models do; llama.cpp's stream does not)."""
    message = chunk[0] if mode == "messages" else None
    reported = getattr(message, "usage_metadata", None) or {}
    for key in ("input_tokens", "output_tokens"):
        if reported.get(key):
            usage[key] = usage.get(key, 0) + int(reported[key])


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
