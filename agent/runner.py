"""The agent loop: one `Agent.stream(question, thread_id)` yielding events, whichever path answers.

Models that call tools reliably run LangChain's `create_agent`. Small local models take the retrieval-first
path (`agent.local_loop`): the knowledge base is searched first, then the model answers or calls tools in its
own format. Both paths keep their history in the same SQLite checkpointer and emit the same events, and on
both the answer is cited and checked as it streams (`agent.citations`), so callers never see the difference.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage

from agent import prompts
from agent.citations import CitationChecker, Evidence
from agent.config import AgentConfig
from agent.events import Answer, Done, Error, Event, Phase, Sources, Token, ToolArgs, ToolEnd, ToolStart, fold
from agent.grounding import sentences
from agent.local_loop import Emit, LocalLoop, ToolResult
from agent.memory import Threads
from agent.models import ModelSpec, call_settings, uses_tool_calling
from agent.providers import Sampling
from agent.routing import standalone_query
from kbagent.errors import KbagentError, UnknownKnowledgeBase
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions
from tools.base import BUILT_IN, ToolParts
from tools.data_tags import as_data
from tools.knowledge_search import Passage, Passages
from tools.registry import build_tools
from tools.web_search import WebResult, WebSearch

if TYPE_CHECKING:
    from langchain.agents.middleware import ModelRequest, ModelResponse
    from langchain_core.language_models import BaseChatModel, LanguageModelInput
    from langchain_core.messages import AnyMessage
    from langchain_core.runnables import Runnable, RunnableConfig
    from langchain_core.tools import BaseTool
    from langgraph.graph.state import CompiledStateGraph

audit = logging.getLogger("kbagent.audit")
MAX_GRAPHS = 4  # compiled tool-calling graphs kept, one per combination of tools offered


@dataclass
class TurnContext:
    """Per-answer state the tools share (LangChain runtime context)."""

    passages: Passages = field(default_factory=Passages)
    tool_results: list[str] = field(default_factory=list)  # calculator and scraper outputs: they back claims too
    question: str = ""
    earlier: list[str] = field(default_factory=list)  # the user's earlier questions in this conversation, in order
    prompt: list[BaseMessage] = field(default_factory=list)  # what the local model answered from (retrieval-first)
    model_settings: Sampling = field(default_factory=dict)  # this answer's sampling (`call_settings`)
    loop: LocalLoop | None = None  # the retrieval-first loop on this answer's model settings
    web: list[WebResult] = field(default_factory=list)  # the web search results this answer was given
    caller: str = ""  # who asked (a client address, "cli"): for the audit log of outside tool calls

    def standalone(self, query: str) -> str:
        """A follow-up query as the search tool runs it (see `agent.routing.standalone_query`)."""
        return standalone_query(query, self.earlier)


Graph: TypeAlias = "CompiledStateGraph[Any, TurnContext, Any, Any]"
"""Either path's compiled graph: their state types differ (LangChain's agent state, `MessagesState`)."""


class AnswerCancelled(Exception):
    """The caller cancelled the answer (its client hung up or stopped reading)."""


class _StopWhenCancelled(BaseCallbackHandler):
    """Raised into the model's own loop at its next token, model call or tool call once `cancel` is set, so a
    cancelled answer stops within a token instead of running to its end."""

    raise_error = True

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def _check(self, *_: object, **__: object) -> None:
        if self.cancel.is_set():
            raise AnswerCancelled("the answer was cancelled")

    on_llm_new_token = on_chat_model_start = on_llm_start = on_tool_start = on_retriever_start = _check


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
        model: BaseChatModel,
        spec: ModelSpec,
        threads: Threads,
        scraper: Callable[[str], str] | None = None,
        search_options: SearchOptions | None = None,
        web_search: WebSearch | None = None,
        outside_tools: Sequence[BaseTool] = (),
    ) -> None:
        """`web_search`: the configured provider, offered per answer (`stream(web=True)`); `outside_tools`: the
        MCP servers' tools (`tools.mcp_client.make_mcp_tools`), offered to tool-calling models on every answer."""
        self.config = config
        self.kb = kb
        self.spec = spec
        self.model = model
        self.threads = threads
        self.search_options = search_options or kb.default_options()
        self.tool_calling = uses_tool_calling(config, spec)
        parts = ToolParts(
            kb,
            config.k,
            config.min_similarity,
            self.search_options,
            rewrite=TurnContext.standalone,
            scraper=scraper,
            web_search=web_search,
            outside=outside_tools,
        )
        self.tools = build_tools(parts)
        self.offers_opt_in = any(entry.opt_in for entry in self.tools.values())
        self.loop = LocalLoop(config, kb, model, self._run_tool, self.tools, self.search_options)
        self._graphs: OrderedDict[bool, Graph] = OrderedDict()
        self._graphs_lock = threading.Lock()
        self.graph = self.graph_for(web=False) if self.tool_calling else self._retrieval_first_graph()

    # ---- the two graphs ----------------------------------------------------------------------------

    def graph_for(self, web: bool) -> Graph:
        """The graph that answers with these tools: the tool-calling graph offers web search only when `web` is
        asked for (and a provider configured). Compiled graphs are kept per combination of tools (a few)."""
        if not self.tool_calling:
            return self.graph
        web = web and self.offers_opt_in
        with self._graphs_lock:
            graph = self._graphs.pop(web, None) or self._tool_graph(web)
            self._graphs[web] = graph  # most recently used last
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
            return graph

    def _tool_graph(self, web: bool = False) -> Graph:
        from langchain.agents import create_agent
        from langchain.agents.middleware import wrap_model_call

        @wrap_model_call
        def per_call(
            request: ModelRequest[TurnContext], handler: Callable[[ModelRequest[TurnContext]], ModelResponse]
        ) -> ModelResponse:
            """Each model call of the turn gets this answer's sampling (a temperature a client asked for), and is
            shown the question, earlier turns and tool results escaped; the thread keeps them as they were (the
            citation check reads those)."""
            wanted = request.runtime.context.model_settings
            return handler(
                request.override(
                    messages=[cast("AnyMessage", as_data(m)) for m in request.messages],  # of the class it was given
                    model_settings={**request.model_settings, **wanted},
                )
            )

        return create_agent(
            self.model,
            self.tools.langchain_tools(opt_in=web),
            system_prompt=prompts.with_instructions(
                prompts.TOOL_AGENT + (prompts.WEB_TOOL if web else ""), self.config.instructions
            ),
            checkpointer=self.threads.checkpointer,
            context_schema=TurnContext,
            middleware=[per_call],
        )

    def _retrieval_first_graph(self) -> Graph:
        from langgraph.config import get_stream_writer
        from langgraph.graph import START, MessagesState, StateGraph
        from langgraph.runtime import Runtime

        def answer(state: MessagesState, runtime: Runtime[TurnContext]) -> dict[str, list[BaseMessage]]:
            question = message_text(state["messages"][-1])
            history = [m for m in state["messages"][:-1] if isinstance(m, HumanMessage | AIMessage)]
            context = runtime.context
            loop = context.loop or self.loop
            text = loop.answer(get_stream_writer(), context, question, history, context.prompt)
            return {"messages": [AIMessage(text)]}

        graph = StateGraph(MessagesState, context_schema=TurnContext)
        graph.add_node("answer", answer)
        graph.add_edge(START, "answer")
        return graph.compile(checkpointer=self.threads.checkpointer)

    def _run_tool(self, emit: Emit, name: str, args: ToolArgs, call: Callable[[], ToolResult]) -> ToolResult:
        """One tool call of the retrieval-first path, reported as its start and end events."""
        call_id = f"rf-{uuid.uuid4().hex[:8]}"
        emit(ToolStart(call_id, name, args, self._step(name)))
        start = time.perf_counter()
        try:
            result = call()
        except UnknownKnowledgeBase:  # deleted while answering: the answer ends here, in one line
            raise
        except Exception as exc:  # a failing tool is reported, and the answer goes on without it
            emit(ToolEnd(call_id, name, f"{type(exc).__name__}: {exc}", time.perf_counter() - start, ok=False))
            return ToolResult(f"{name} failed: {exc}")
        emit(ToolEnd(call_id, name, result.text, time.perf_counter() - start, passages=result.passages))
        return result

    def _step(self, name: str) -> str:
        entry = self.tools.get(name)
        return entry.step if entry else ""

    def _passages(self, name: str, artifact: object) -> list[Passage] | None:
        """A tool's passages (its artifact), for a tool that returns them; None for the others."""
        entry = self.tools.get(name)
        if entry is None or not entry.passages:
            return None
        return list(artifact) if isinstance(artifact, list | tuple) else []

    # ---- streaming -----------------------------------------------------------------------------------

    def model_at(self, temperature: float | None) -> Runnable[LanguageModelInput, BaseMessage]:
        """The agent's model, sampling at `temperature` for the calls made through it (the model is built once)."""
        settings = self._settings(temperature)
        return self.model.bind(**settings) if settings else self.model

    def _settings(self, temperature: float | None) -> Sampling:
        if temperature is None or temperature == self.config.temperature:
            return {}
        return call_settings(self.spec, self.config, temperature)

    def stream(
        self,
        question: str,
        thread_id: str | None = None,
        *,
        temperature: float | None = None,
        cancel: threading.Event | None = None,
        web: bool = False,
        caller: str = "",
    ) -> Iterator[Event]:
        """The answer's events. `temperature`: this answer's (None: the configured one), passed with each model
        call. `cancel`: once set, the answer stops at the model's next token and ends with an Error. `web`: the
        model may search the web too (when a provider is configured). `caller`: who asks, for the audit log."""
        thread_id = thread_id or self.threads.new_thread()
        held = self.threads.get(thread_id)
        if held is not None and held.kb and held.kb != self.kb.id:
            yield Error(f"conversation {thread_id} belongs to another knowledge base; continue it there")
            return
        self.threads.touch(thread_id, question, self.spec.label, self.kb.id)
        earlier = [text for role, text in self.history(thread_id) if role == "user"]
        context = TurnContext(
            question=question, earlier=earlier, model_settings=self._settings(temperature), caller=caller
        )
        graph = self.graph_for(web)
        if context.model_settings and not self.tool_calling:
            model = self.model.bind(**context.model_settings)
            context.loop = LocalLoop(self.config, self.kb, model, self._run_tool, self.tools, self.search_options)
        started: dict[str, tuple[str, float]] = {}
        asked: dict[str, ToolArgs] = {}  # a call's arguments by its id, for the audit log
        checker = CitationChecker(partial(_evidence, context))
        usage: dict[str, int] = {}
        start = time.perf_counter()
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}, "recursion_limit": 12}
        if cancel is not None:
            config["callbacks"] = [_StopWhenCancelled(cancel)]
        try:
            for mode, chunk in graph.stream(
                {"messages": [HumanMessage(question)]},
                config,
                context=context,
                stream_mode=["messages", "updates", "custom"],
            ):
                _count_usage(mode, chunk, usage)
                for event in self._events(mode, chunk, started):
                    if isinstance(event, ToolStart):
                        asked[event.call_id] = event.args
                    if isinstance(event, ToolEnd):
                        self._took(event, context, asked.pop(event.call_id, {}))
                    yield from checker.feed(event.text) if isinstance(event, Token) else [event]
        except Exception as exc:
            yield Error(_describe(exc))
            return
        if not checker.text.strip():  # a model that doesn't stream
            yield from checker.feed(self._last_answer(thread_id))
        yield from checker.finish()
        text, retracted = checker.text.strip(), ""
        if _core_unsupported(text, checker, strict=not self.tool_calling):
            claims = sorted({c for u in checker.unsupported for c in u.claims})
            second = None
            if context.prompt:  # the retrieval-first path: the model gets one second try
                yield Phase("checking")
                second = self._ask_again(context, text, claims)
            # The plain sentence: the claims are the model's ("don't mention 22" to a question with no 22 in it
            # tells its reader nothing); the retracted answer and its Unsupported events name them.
            retracted, text = text, second.text.strip() if second else prompts.NOT_FOUND
            checker = second or checker
        self._keep_final(graph, config, text)
        cited = context.passages.cited_in(text)
        self.threads.keep_sources(thread_id, text, [p.as_dict() for p in cited])
        numbers = {p.n for p in cited}
        yield Sources(cited, [p for p in context.passages.all() if p.n not in numbers], context.web)
        seconds = time.perf_counter() - start
        yield Done(
            text,
            thread_id,
            self.spec.label,
            seconds,
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            checker.unsupported,
            retracted,
        )

    def _ask_again(self, context: TurnContext, answer: str, claims: list[str]) -> CitationChecker | None:
        """A made-up answer's one second chance (retrieval-first path): the model hears which of its claims no
        passage holds and answers again, checked like the first. None when it gives up or makes things up again
        (then the answer says the knowledge base does not say)."""
        try:
            reply = (context.loop or self.loop).ask_again(context.prompt, answer, claims)
        except Exception:  # a model failing now leaves the first check standing: the not-found answer
            return None
        checker = CitationChecker(partial(_evidence, context))
        checker.feed(reply)
        checker.finish()
        text = checker.text.strip()
        if not text or text.startswith(prompts.NOT_FOUND) or _core_unsupported(text, checker, strict=True):
            return None
        return checker

    def _took(self, event: ToolEnd, context: TurnContext, args: ToolArgs) -> None:
        """What a finished tool call adds to the answer: its output backs claims (a search's passages do so
        themselves), web results become web sources, and an outside tool's call is written to the audit log."""
        entry = self.tools.get(event.name)
        if event.passages is None:
            context.tool_results.append(event.output)
        if isinstance(event.artifact, list):
            seen = {r.url for r in context.web}
            context.web += [r for r in event.artifact if isinstance(r, WebResult) and r.url not in seen]
        if entry is not None and entry.origin != BUILT_IN:
            from tools.mcp_client import McpCall  # the MCP client's imports only where outside tools are in use

            call = event.artifact if isinstance(event.artifact, McpCall) else None
            outcome = "ok" if call is not None and call.ok else (call.error if call else event.output)
            audit.info(
                "outside tool call: caller=%s at=%s tool=%s args=%d bytes seconds=%.3f outcome=%s",
                context.caller or "unknown",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                f"{call.server}/{call.tool}" if call else event.name,
                len(json.dumps(call.arguments if call else args, ensure_ascii=False, default=str).encode()),
                event.seconds,
                " ".join(str(outcome).split())[:300] or "failed",
            )

    def _keep_final(self, graph: Graph, config: RunnableConfig, text: str) -> None:
        """The thread keeps the answer as the user was shown it (citations added, or replaced), so a reopened
        conversation and the next question's history read the same text."""
        state = graph.get_state(config)
        messages = (state.values or {}).get("messages", [])
        last = messages[-1] if messages else None
        if isinstance(last, AIMessage) and last.id and message_text(last).strip() != text and not last.tool_calls:
            graph.update_state(config, {"messages": [AIMessage(text, id=last.id)]})

    def _events(self, mode: str, chunk: object, started: dict[str, tuple[str, float]]) -> Iterator[Event]:
        if mode == "custom":  # the retrieval-first path's own events
            if isinstance(chunk, Token | Phase | ToolStart | ToolEnd):
                yield chunk
        elif mode == "messages" and isinstance(chunk, tuple):
            message, _meta = chunk
            # Only streamed chunks: whole messages repeat text already streamed (or are handled in `stream`).
            if isinstance(message, AIMessageChunk):
                text = message_text(message)
                if text:
                    yield Token(text)
        elif mode == "updates" and isinstance(chunk, dict):
            for update in chunk.values():
                for message in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                    if isinstance(message, AIMessage):
                        for call in message.tool_calls:
                            call_id = call["id"] or f"call-{uuid.uuid4().hex[:8]}"
                            started[call_id] = (call["name"], time.perf_counter())
                            yield ToolStart(call_id, call["name"], call["args"], self._step(call["name"]))
                    elif isinstance(message, ToolMessage):
                        name, t0 = started.pop(message.tool_call_id, (message.name or "tool", time.perf_counter()))
                        ok = getattr(message, "status", "success") != "error"
                        seconds, artifact = time.perf_counter() - t0, getattr(message, "artifact", None)
                        passages = self._passages(name, artifact)
                        yield ToolEnd(
                            message.tool_call_id, name, message_text(message), seconds, ok, passages,
                            None if passages is not None else artifact,
                        )  # fmt: skip

    def _last_answer(self, thread_id: str) -> str:
        history = self.history(thread_id)
        return history[-1][1] if history and history[-1][0] == "assistant" else ""

    def ask(self, question: str, thread_id: str | None = None) -> Answer:
        """The whole answer at once (scripts, the API, tests); raises AnswerError when there is none."""
        return fold(self.stream(question, thread_id))

    def seed(self, thread_id: str, turns: list[tuple[str, str]]) -> None:
        """Starts a new thread with earlier (role, text) turns held elsewhere: an OpenAI-style client sends the
        whole conversation with every question, and the answer reads it as this thread's history."""
        messages = [HumanMessage(text) if role == "user" else AIMessage(text) for role, text in turns]
        if messages:
            self.graph.update_state({"configurable": {"thread_id": thread_id}}, {"messages": messages})

    def history(self, thread_id: str) -> list[tuple[str, str]]:
        state = self.graph.get_state({"configurable": {"thread_id": thread_id}})
        out = []
        for message in (state.values or {}).get("messages", []):
            if isinstance(message, HumanMessage):
                out.append(("user", message_text(message)))
            elif isinstance(message, AIMessage) and message_text(message).strip():
                out.append(("assistant", message_text(message)))
        return out


def _evidence(context: TurnContext) -> Evidence:
    said = [context.question, *context.earlier]  # the user's own words: what they said is not made up
    passages = {p.n: p.text for p in context.passages.all()}
    return Evidence(passages, [*context.tool_results, *said], context.question, context.tool_results)


def _core_unsupported(text: str, checker: CitationChecker, strict: bool = False) -> bool:
    """A short answer (three sentences at most) whose core no source backs (`CitationChecker.made_up`), or,
    when `strict` (small local models: measured there), none of whose sentences a passage backs."""
    if text.startswith(prompts.NOT_FOUND):  # an abstention asserts nothing
        return False
    return len(sentences(text)) <= 3 and (checker.made_up() or (strict and checker.unbacked()))


def _count_usage(mode: str, chunk: object, usage: dict[str, int]) -> None:
    """Adds the token counts a streamed message reports (API models do; llama.cpp's stream does not)."""
    message = chunk[0] if mode == "messages" and isinstance(chunk, tuple) else None
    reported = getattr(message, "usage_metadata", None) or {}
    for key in ("input_tokens", "output_tokens"):
        if reported.get(key):
            usage[key] = usage.get(key, 0) + int(reported[key])


def _describe(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (text if isinstance(exc, KbagentError) else f"{type(exc).__name__}: {text}")[:300]
