"""The answer path for small local models: search first, then the model may call tools in its own format.

1. The knowledge base is searched with the question made stand-alone (a follow-up borrows the words of the
   question before it), wider and one passage per document first for questions that gather many items; a URL
   in the question is scraped and arithmetic in it calculated (rules: a model of this size misses them).
2. The model reads the passages (cut to what bears on the question) and either answers, streamed as it is
   written, or calls a tool in its chat template's own format (Qwen2.5's `<tool_call>{"name": …,
   "arguments": …}</tool_call>`): search again with its own query (say, the person the first passages named),
   the calculator over numbers it read, the scraper. At most `local_tool_steps` calls (a setting), each one a
   tool event.

Why not llama.cpp's tool-calling chat handler: in llama-cpp-python 0.3.36 it empties plain answers, escapes
arguments and drops tool results. Why not a grammar on every token: it slows decoding ten-fold here; a call
that does not parse is asked again under a JSON schema instead, so what runs always parses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agent import prompts
from agent.config import AgentConfig
from agent.events import Event, Phase, Token, ToolArgs
from agent.grounding import specifics_missing
from agent.routing import arithmetic_in, gathers_many, only_arithmetic, standalone_query, urls_in
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions
from tools.base import AgentTool, ToolRegistry
from tools.calculator import CALCULATOR_TOOL
from tools.data_tags import escape_tokens, neutralise
from tools.excerpts import focus
from tools.knowledge_search import SEARCH_TOOL, Passage, Passages, chunk_key, format_passages, search_passages
from tools.scraper import SCRAPE_TOOL

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.runnables import Runnable, RunnableConfig

HISTORY_MESSAGES = 6
CALL_START = "<tool_call>"
CALL = re.compile(r"<tool_call>\s*(\{.*\})\s*(?:</tool_call>)?\s*$", re.DOTALL)
CALL_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
    "required": ["name", "arguments"],
}
NOSTREAM: RunnableConfig = {"tags": ["nostream"]}  # LangGraph streams no tokens of its own for this call: the loop does

Emit = Callable[[Event], None]
Call = tuple[str, ToolArgs]  # a tool's name and its arguments


@dataclass
class ToolResult:
    """What one tool call gave: its text, and for a search the passages it found (None for other tools)."""

    text: str
    passages: list[Passage] | None = None


RunTool = Callable[[Emit, str, ToolArgs, Callable[[], ToolResult]], ToolResult]


class TurnState(Protocol):
    """The turn's context as the loop and the tools read it (`agent.runner.TurnContext`)."""

    passages: Passages


def tool_spec(entry: AgentTool) -> str:
    """A tool as the small model's chat template lists it: its schema, derived from the LangChain tool."""
    return json.dumps(entry.local_spec(), ensure_ascii=False)


def parse_call(text: str) -> Call | None:
    """(name, arguments) of a `<tool_call>{json}</tool_call>`, or None when it does not parse."""
    match = CALL.search(text.strip())
    if not match:
        return None
    return call_from_json(match.group(1))


def call_from_json(text: str) -> Call | None:
    try:
        call = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    arguments = call.get("arguments")
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    return (call["name"], arguments) if isinstance(arguments, dict) else None


class LocalLoop:
    """The retrieval-first answer node (see the module docstring); `run_tool` reports each step as events."""

    def __init__(
        self,
        config: AgentConfig,
        kb: KnowledgeBase,
        model: Runnable[LanguageModelInput, BaseMessage],
        run_tool: RunTool,
        tools: ToolRegistry,
        search_options: SearchOptions,
    ) -> None:
        self.config, self.kb, self.model, self.run_tool = config, kb, model, run_tool
        self.search_options = search_options
        self.tools = {entry.name: entry for entry in tools.local()}
        specs = [tool_spec(entry) for entry in self.tools.values()]
        system = prompts.local_system(specs if config.local_tool_steps else [])
        self.system = prompts.with_instructions(system, config.instructions)

    def answer(
        self,
        emit: Emit,
        turn: TurnState,
        question: str,
        history: Sequence[BaseMessage],
        prompt: list[BaseMessage] | None = None,
    ) -> str:
        """The answer, streamed through `emit`; `turn` is the answer's context (its passages, what the tools
        read); `prompt` receives the messages the model answered from (for `ask_again`)."""
        registry = turn.passages
        earlier = [str(m.text) for m in history if isinstance(m, HumanMessage)]
        expressions = arithmetic_in(question)
        found: list[Passage] = []
        many = gathers_many(question)
        query = standalone_query(question, earlier)
        if not only_arithmetic(question, expressions):
            queries = [question, query] if query != question else [question]
            first = partial(self.first_search, registry, queries, many)
            found = self.run_tool(emit, SEARCH_TOOL, {"query": query}, first).passages or []
        urls = urls_in(question) if SCRAPE_TOOL in self.tools else []
        results = [self.tool_text(emit, turn, SCRAPE_TOOL, {"url": u}, question) for u in urls]
        results += [self.tool_text(emit, turn, CALCULATOR_TOOL, {"expression": e}, question) for e in expressions]
        if not found and not results:
            return self.say(emit, prompts.NOT_FOUND)
        missing = [] if results else specifics_missing(question, [p.text for p in found])
        if missing:  # "in 2019" and no passage found says 2019: whatever the model wrote would be another year's
            return self.say(emit, prompts.unsupported_answer(missing))
        messages = self.answer_messages(question, found, results, history, many, query)
        steps = self.config.local_tool_steps
        for step in range(steps + 1):
            if step == steps and step:
                messages.append(HumanMessage(prompts.ANSWER_NOW))
            if prompt is not None:
                prompt[:] = messages
            emit(Phase("reading", len(registry.all())))  # the model reads before its first word
            text, call = self.generate(emit, messages, tools=step < steps)
            if call is None:
                return text
            name, args = call
            output = self.tool_text(emit, turn, name, args, question)
            request = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
            messages += [AIMessage(f"{CALL_START}\n{request}\n</tool_call>"),
                         HumanMessage(f"<tool_response>\n{escape_tokens(output)}\n</tool_response>")]  # fmt: skip
        return self.say(emit, prompts.NOT_FOUND)  # pragma: no cover (the last step allows no call)

    def first_search(self, registry: Passages, query: str | list[str], many: bool) -> ToolResult:
        """The search every answer starts with, as the model would read it in full."""
        found = self.search(registry, query, many)
        return ToolResult(format_passages(found), found)

    def search(self, registry: Passages, query: str | list[str], many: bool = False) -> list[Passage]:
        """The passages for `query`; for a question that gathers many items, twice as many, the best passage of
        each document first (a count over ten documents needs all ten, not the top five of two)."""
        k = self.config.k * 2 if many else self.config.k
        options = self.search_options
        if not many:
            return search_passages(self.kb, registry, query, k, min_similarity=self.config.min_similarity,
                                   options=options)  # fmt: skip
        docs = [d for q in ([query] if isinstance(query, str) else query)
                for d in self.kb.search(q, k=k * 2, options=replace(options, similarity=True))]  # fmt: skip
        docs = list({chunk_key(d): d for d in reversed(docs)}.values())[::-1]  # each chunk once, at its best rank
        docs = [d for d in docs if (d.metadata.get("similarity") or 0.0) >= self.config.min_similarity]
        firsts = list({str(d.metadata.get("source")): d for d in reversed(docs)}.values())[::-1]
        firsts.sort(key=docs.index)
        ordered = firsts + [d for d in docs if not any(d is f for f in firsts)]
        return [registry.add(d) for d in ordered[:k]]

    def tool_text(self, emit: Emit, turn: TurnState, name: str, args: ToolArgs, question: str) -> str:
        """Run one tool the model (or a rule) asked for; what the model reads back: a tool's text, or the new
        passages a search found, cut to what bears on the question."""
        entry = self.tools.get(name)
        value = str(next(iter(args.values()), "")) if args else ""
        if entry is None or not value.strip():
            return f"There is no tool {name!r} with those arguments; answer from the passages."
        args = {entry.local_args[0]: value} if entry.local_args else args  # the argument, whatever the model named it
        before = {p.n for p in turn.passages.all()}
        result = self.run_tool(emit, name, args, partial(_invoke, entry, args, turn))
        if result.passages is None:
            return result.text
        new = [p for p in result.passages if p.n not in before]
        if not new:
            return "No new passages: answer from those above."
        excerpts = focus(self.kb.embedder, question, [p.text for p in new], self.config.context_chars // 2)
        return format_passages(new, compact=True, texts=excerpts)

    def generate(self, emit: Emit, messages: list[BaseMessage], tools: bool) -> tuple[str, Call | None]:
        """The model's reply: an answer, streamed as it comes, or a tool call, held back (and run only when
        `tools`). The reply's first characters tell which; a call that does not parse is asked for again under a
        JSON schema."""
        pieces: list[str] = []
        calling: bool | None = None
        for text in self._stream(messages, stop=["</tool_call>"]):
            pieces.append(text)
            if calling is None:
                head = "".join(pieces).lstrip()
                if CALL_START.startswith(head[: len(CALL_START)]) and head:
                    if len(head) < len(CALL_START):
                        continue  # "<tool" so far: wait for the rest
                    calling = True
                elif head:
                    calling = False
                    emit(Token("".join(pieces)))
            elif not calling:
                if CALL_START in "".join(pieces[-3:]):
                    break  # a call after an answer: the answer is what the user gets
                emit(Token(text))
        reply = "".join(pieces)
        if not calling:
            return reply.split(CALL_START)[0].strip(), None
        call = (parse_call(reply) or self._constrained_call(messages)) if tools else None
        if call is None:  # no more calls allowed, or one that does not parse even under the schema
            return self.say(emit, prompts.NOT_FOUND), None
        return "", call

    def ask_again(self, prompt: list[BaseMessage], answer: str, claims: list[str]) -> str:
        """The model's second answer, after it hears which of its claims no passage holds (not streamed: the
        first answer is on screen until this one replaces it)."""
        messages = [*prompt, AIMessage(answer), HumanMessage(prompts.ask_again(claims))]
        return "".join(self._stream(messages, stop=[CALL_START])).strip()

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None) -> Iterator[str]:
        for chunk in self.model.stream(messages, config=NOSTREAM, stop=stop):
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                yield text

    def _constrained_call(self, messages: list[BaseMessage]) -> Call | None:
        """The call again, as JSON under a schema (llama.cpp turns it into a grammar); None for other models."""
        if not hasattr(self.model, "client"):
            return None
        schema = {"type": "json_object", "schema": CALL_SCHEMA}
        reply = self.model.invoke(messages, config=NOSTREAM, response_format=schema)
        return call_from_json(reply.content if isinstance(reply.content, str) else "")

    @staticmethod
    def say(emit: Emit, text: str) -> str:
        emit(Token(text))
        return text

    def answer_messages(
        self,
        question: str,
        found: list[Passage],
        results: list[str],
        history: Sequence[BaseMessage] | None = None,
        many: bool = False,
        query: str | None = None,
    ) -> list[BaseMessage]:
        """The fixed system prompt first (llama.cpp reuses its cached state), then recent turns, then the
        passages cut to what bears on the question (a follow-up: on its stand-alone `query`), and the question.
        Every text not ours (turns, passages, tool results, the question) has its chat-template tokens escaped."""
        budget = self.config.context_chars * (2 if many else 1)
        excerpts = focus(self.kb.embedder, query or question, [p.text for p in found], budget)
        passages = format_passages(found, compact=True, texts=excerpts)
        examples = [m for asked, answered in prompts.EXAMPLES for m in (HumanMessage(asked), AIMessage(answered))]
        return [
            SystemMessage(self.system),
            *examples,
            *[type(m)(neutralise(m.text)) for m in (history or [])[-HISTORY_MESSAGES:]],
            HumanMessage(
                prompts.retrieval_first_message(
                    neutralise(question),
                    passages,
                    [escape_tokens(r) for r in results],
                    gather=many,
                    query=neutralise(query) if query else None,
                )
            ),
        ]


def _invoke(entry: AgentTool, args: ToolArgs, turn: TurnState) -> ToolResult:
    """The LangChain tool, called as a model's tool call is: a tool that reads the agent's runtime gets the turn's
    context (a search numbers its passages in the turn's registry), and its artifact comes back beside its text."""
    from langchain.tools import ToolRuntime

    if "runtime" in (getattr(entry.tool.args_schema, "model_fields", None) or {}):  # LangChain injects it there
        runtime: ToolRuntime[TurnState] = ToolRuntime(
            state={}, context=turn, config={}, stream_writer=_ignore, tool_call_id=None, store=None
        )
        args = {**args, "runtime": runtime}
    message = entry.tool.invoke({"type": "tool_call", "name": entry.name, "args": args, "id": "local"})
    text = message.content if isinstance(message.content, str) else str(message.content)
    return ToolResult(text, list(message.artifact or []) if entry.passages else None)


def _ignore(_: object) -> None:
    """A tool called here writes to no stream: the loop reports it."""
