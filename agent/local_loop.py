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
from dataclasses import replace
from functools import partial
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agent import prompts
from agent.config import AgentConfig
from agent.events import Phase
from agent.grounding import specifics_missing
from agent.routing import arithmetic_in, gathers_many, only_arithmetic, standalone_query, urls_in
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import SearchOptions
from tools.calculator import CalculatorError, describe
from tools.data_tags import escape_tokens, neutralise
from tools.excerpts import focus
from tools.knowledge_search import Passage, Passages, chunk_key, format_passages, search_passages

HISTORY_MESSAGES = 6
CALL_START = "<tool_call>"
CALL = re.compile(r"<tool_call>\s*(\{.*\})\s*(?:</tool_call>)?\s*$", re.DOTALL)
CALL_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "arguments": {"type": "object"}},
    "required": ["name", "arguments"],
}
TOOL_SPECS = {
    "search_knowledge_base": ("Search the user's documents again, with a query of your own.", "query"),
    "calculator": ("Evaluate arithmetic exactly, e.g. 120 - 45 or 3 * 18.50 or 15% of 80.", "expression"),
    "scrape_webpage": ("Read a web page the user gave, by its URL.", "url"),
}
NOSTREAM = {"tags": ["nostream"]}  # LangGraph streams no tokens of its own for this call: the loop does

Emit = Callable[[Any], None]
Call = tuple[str, dict[str, Any]]  # a tool's name and its arguments
RunTool = Callable[[Emit, str, dict[str, Any], Callable[[], Any], Callable[[Any], str]], Any]


def tool_spec(name: str) -> str:
    description, argument = TOOL_SPECS[name]
    parameters = {"type": "object", "properties": {argument: {"type": "string"}}, "required": [argument]}
    return json.dumps(
        {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
    )


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
        model: Any,
        run_tool: RunTool,
        scraper: Callable[[str], str] | None,
        search_options: SearchOptions,
    ) -> None:
        self.config, self.kb, self.model, self.run_tool = config, kb, model, run_tool
        self.scraper, self.search_options = scraper, search_options
        names = ["search_knowledge_base", "calculator"] + (["scrape_webpage"] if scraper else [])
        system = prompts.local_system([tool_spec(n) for n in names] if config.local_tool_steps else [])
        self.system = prompts.with_instructions(system, config.instructions)
        self.names = set(names)

    def answer(
        self,
        emit: Emit,
        registry: Passages,
        question: str,
        history: Sequence[BaseMessage],
        prompt: list[BaseMessage] | None = None,
    ) -> str:
        """The answer, streamed through `emit`; `prompt` receives the messages the model answered from (for
        `ask_again`)."""
        earlier = [str(m.text) for m in history if isinstance(m, HumanMessage)]
        expressions = arithmetic_in(question)
        found: list[Passage] = []
        many = gathers_many(question)
        query = standalone_query(question, earlier)
        if not only_arithmetic(question, expressions):
            queries = [question, query] if query != question else [question]
            found = self.run_tool(emit, "search_knowledge_base", {"query": query},
                                  partial(self.search, registry, queries, many), format_passages)  # fmt: skip
        urls = urls_in(question) if self.scraper else []
        results = [self.tool_text(emit, registry, "scrape_webpage", {"url": u}, question) for u in urls]
        results += [self.tool_text(emit, registry, "calculator", {"expression": e}, question) for e in expressions]
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
            emit({"phase": Phase("reading", len(registry.all()))})  # the model reads before its first word
            text, call = self.generate(emit, messages, tools=step < steps)
            if call is None:
                return text
            name, args = call
            output = self.tool_text(emit, registry, name, args, question)
            request = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
            messages += [AIMessage(f"{CALL_START}\n{request}\n</tool_call>"),
                         HumanMessage(f"<tool_response>\n{escape_tokens(output)}\n</tool_response>")]  # fmt: skip
        return self.say(emit, prompts.NOT_FOUND)  # pragma: no cover (the last step allows no call)

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

    def tool_text(self, emit: Emit, registry: Passages, name: str, args: dict[str, Any], question: str) -> str:
        """Run one tool the model (or a rule) asked for; what the model reads back."""
        value = str(next(iter(args.values()), "")) if args else ""
        if name not in self.names or not value.strip():
            return f"There is no tool {name!r} with those arguments; answer from the passages."
        if name == "search_knowledge_base":
            before = {p.n for p in registry.all()}
            found = self.run_tool(emit, name, {"query": value}, partial(self.search, registry, value), format_passages)
            new = [p for p in found if p.n not in before]
            if not new:
                return "No new passages: answer from those above."
            excerpts = focus(self.kb.embedder, question, [p.text for p in new], self.config.context_chars // 2)
            return format_passages(new, compact=True, texts=excerpts)
        if name == "calculator":
            return str(self.run_tool(emit, name, {"expression": value}, partial(_calculate, value), str))
        scraper = self.scraper
        assert scraper is not None  # in self.names only with a scraper
        page = self.run_tool(emit, name, {"url": value}, partial(scraper, value), str)
        return f"Web page {value}:\n{page}"

    def generate(
        self, emit: Emit, messages: list[BaseMessage], tools: bool
    ) -> tuple[str, tuple[str, dict[str, Any]] | None]:
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
                    emit({"token": "".join(pieces)})
            elif not calling:
                if CALL_START in "".join(pieces[-3:]):
                    break  # a call after an answer: the answer is what the user gets
                emit({"token": text})
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
        emit({"token": text})
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


def _calculate(expression: str) -> str:
    try:
        return describe(expression)
    except CalculatorError as exc:
        return f"Calculator error: {exc}"
