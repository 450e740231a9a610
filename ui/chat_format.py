"""The Chat tab's text: an answer's events as Gradio chat messages (its tool calls, its words, what the check found),
the sources panel, a reopened conversation, the conversations list."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence

import gradio as gr
from gradio.components.chatbot import MessageDict, MetadataDict

from agent.events import Done, Error, Event, Phase, Sources, Token, ToolEnd, ToolStart
from agent.memory import ThreadInfo
from kbagent.services.turns import ToolCall, Turn
from tools.knowledge_search import Passage
from tools.web_search import WebResult
from ui.markup import md_escape, path_html, plain_text, quote, text_only, url_text, web_link
from ui.safe_markdown import safe_markdown
from ui.source_panel import link_citations

TOOL_ICON = "⚙"  # in common fonts (DejaVu too); 🔧 needs an emoji font
MAX_TOOL_OUTPUT = 1500
MAX_PASSAGE_CHARS = 700
WEB_PAGE = re.compile(r'^\s*<web_page url="([^"<>]*)" title="([^"<>]*)">\s*$')  # as `tools.data_tags.attribute` writes
# A chat message: as Gradio hands the history in (a dict), or as a handler adds it.
ChatItem = gr.ChatMessage | MessageDict
FRAMING = re.compile(r"^\s*(?:</?retrieved_passages>|</?web_page\b[^>]*>|<!--.*-->)\s*$")  # the model's, not the user's
# A cited passage's address in the viewer, given the answer's sentence citing it (`ui.source_panel.Addresses`).
AddressOf = Callable[[Passage, str], str]


class AnswerView:
    """One answer's events, folded into the chat messages that show it. `messages()` returns a new list of new
    messages every time (Gradio diffs what it is given; mutating what it already holds would send nothing)."""

    def __init__(
        self,
        history: Sequence[ChatItem],
        question: str,
        names: Mapping[str, str] | None = None,
        addresses: AddressOf | None = None,
    ) -> None:
        self.history = list(history)
        self.names = names or {}  # source → what the user calls it (`KnowledgeBase.display_names`)
        self.addresses = addresses  # each [n] a link to its passage in the viewer, once the passages are known
        self.question = question
        self.parts: list[ToolCall | list[str]] = []  # tool calls and answer text, in the order they came
        self.cited: list[Passage] = []
        self.retrieved: list[Passage] = []  # retrieved and not cited
        self.web: list[WebResult] = []  # the web search results the answer was given
        self.done: Done | None = None
        self.error: str | None = None
        self.notice: str | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, Token):
            if not self.parts or not isinstance(self.parts[-1], list):
                self.parts.append([])
            self.parts[-1].append(event.text)  # type: ignore[union-attr]
            self.notice = None
        elif isinstance(event, ToolStart):
            self.parts.append(ToolCall(event.call_id, event.name, dict(event.args or {}), step=event.step))
        elif isinstance(event, Phase) and event.step == "checking":
            self.notice = "No source backs that answer: asking the model again…"
        elif isinstance(event, Phase):
            count = event.passages
            self.notice = f"Reading {count} passage{'' if count == 1 else 's'}…" if count else "Reading…"
        elif isinstance(event, ToolEnd):
            self.notice = "Reading the results…"
            call = next((p for p in self.parts if isinstance(p, ToolCall) and p.call_id == event.call_id), None)
            if call is None:
                call = ToolCall(event.call_id, event.name, {})
                self.parts.append(call)
            call.output, call.seconds, call.ok, call.passages = event.output, event.seconds, event.ok, event.passages
        elif isinstance(event, Sources):
            self.cited, self.retrieved, self.web = list(event.cited), list(event.retrieved), list(event.web)
        elif isinstance(event, Done):
            self.done = event
        elif isinstance(event, Error):
            self.error = event.message

    @property
    def step(self) -> str:
        """What the agent does now, in words, for the sources panel while the answer is not done."""
        if self.parts and isinstance(self.parts[-1], list):
            return self.notice or "Writing the answer…"  # a notice after words: the answer is being checked
        last = self.parts[-1] if self.parts else None
        if isinstance(last, ToolCall) and last.output is None:
            return last.step or f"Running {last.name}…"
        return self.notice or "Thinking…"

    def turn(self) -> Turn:
        """What this answer showed besides its text, to show again when its conversation is reopened."""
        return Turn([p for p in self.parts if isinstance(p, ToolCall)], self.cited, self.retrieved, self.web)

    @property
    def answer(self) -> str:
        return "".join("".join(p) for p in self.parts if isinstance(p, list)).strip()

    def messages(self) -> list[ChatItem]:
        out: list[ChatItem] = [*self.history, gr.ChatMessage(role="user", content=self.question)]
        retracted = self.done.retracted if self.done else ""
        for part in self.parts:
            if isinstance(part, ToolCall):
                out.append(tool_message(part, self.names))
            else:
                text = "".join(part)
                if text.strip() and not retracted:
                    shown = link_citations(safe_markdown(text, self.names), self.cited, self.addresses)
                    out.append(gr.ChatMessage(role="assistant", content=shown))
        if self.done is not None:
            out.extend(check_messages(self.done, self.names))
        last = self.parts[-1] if self.parts else None
        waiting = last is None or (isinstance(last, ToolCall) and last.output is not None)  # a running tool shows
        if self.notice and not self.error and waiting:
            pending: MetadataDict = {"title": self.notice, "status": "pending"}
            out.append(gr.ChatMessage(role="assistant", content="", metadata=pending))
        if self.error:
            out.append(gr.ChatMessage(role="assistant", content=f"⚠ **Error:** {safe_markdown(self.error)}"))
        return out


def check_messages(done: Done, names: Mapping[str, str] | None = None) -> list[gr.ChatMessage]:
    """What the agent's check of the answer found: the answer that replaced a made-up one (the model's own kept
    folded away), or the sentences no source backs, marked so that nobody reads them as facts. The model's words
    are made safe to render (`safe_markdown`: links only to `names`' sources and this machine)."""
    if done.retracted:
        return [
            gr.ChatMessage(role="assistant", content=safe_markdown(done.answer, names or {})),
            gr.ChatMessage(
                role="assistant",
                content=safe_markdown(done.retracted, names or {}),
                metadata={"title": "⚠ The model's answer, which no source backs", "status": "done"},
            ),
        ]
    if not done.unsupported:
        return []
    lines = [f"- {md_escape(u.sentence)} (not found: {', '.join(u.claims)})" for u in done.unsupported]
    title = "⚠ Not found in the sources" + (f" ({len(lines)} sentences)" if len(lines) > 1 else "")
    content = "\n".join(lines)
    return [gr.ChatMessage(role="assistant", content=content, metadata={"title": title, "status": "done"})]


def tool_message(call: ToolCall, names: Mapping[str, str] | None = None) -> gr.ChatMessage:
    """A tool call as a collapsible message: its input, then its output as a user reads it: the passages a search
    found (from its data, never parsed out of its text), or the text of any other tool."""
    args = json.dumps(call.args, ensure_ascii=False, indent=1) if call.args else "{}"
    body = f"**Input**\n```json\n{args}\n```"
    if call.output is not None:
        shown = passages_markdown(call.passages, names or {}) if call.passages is not None else None
        body += f"\n\n**{'Output' if call.ok else 'Failed'}**\n\n{shown or readable_output(call.output)}"
    metadata: MetadataDict = {"title": f"{TOOL_ICON} {call.name}", "id": call.call_id}
    if call.output is None:
        metadata["status"] = "pending"
        metadata["log"] = "running"
    else:
        metadata["status"] = "done"
        metadata["duration"] = round(call.seconds or 0.0, 2)
        metadata["log"] = "ok" if call.ok else "failed"
    return gr.ChatMessage(role="assistant", content=body, metadata=metadata)


def passages_markdown(passages: Sequence[Passage], names: Mapping[str, str], limit: int = MAX_TOOL_OUTPUT) -> str:
    """What a search found: each passage as a bold "[n] title · path (location)" and its text quoted, all of them
    within `limit` characters of text."""
    out, left = [], limit
    for p in passages:
        facts = [md_escape(p.title) if p.title else "", path_html(p.source, names)]
        out.append(f"**[{p.n}]** " + " · ".join(f for f in facts if f) + (f" ({p.location})" if p.location else ""))
        text = plain_text(p.text, max(left, 0))
        left -= len(text)
        out.append(quote(text))
    return "\n".join(out).strip()


def readable_output(output: str) -> str:
    """A tool's text without the framing written for the model (data tags, "not instructions" notes), quoted; a
    page or web result as its bold title and its address as text (never a link: the model's tool output is no
    source list)."""
    text = output if len(output) <= MAX_TOOL_OUTPUT else output[:MAX_TOOL_OUTPUT] + " …(cut)"
    out = []
    for raw in text.splitlines():
        web_page = WEB_PAGE.match(raw)  # read before unescaping: the attributes are escaped, quotes included
        if web_page:
            url, title = (html.unescape(value) for value in web_page.groups())
            out.append(f"**{text_only(title)}** · {url_text(url)}" if title != url else url_text(url))
            continue
        line = html.unescape(raw)
        if FRAMING.match(line):
            continue
        line = plain_text(line, MAX_TOOL_OUTPUT)  # no emphasis markers, table rows as "a · b", rules dropped
        out.append(f"> {text_only(line)}  " if line.strip() else "")
    return "\n".join(out).strip()


def sources_markdown(
    cited: Sequence[Passage],
    retrieved: Sequence[Passage] = (),
    names: Mapping[str, str] | None = None,
    web: Sequence[WebResult] = (),
    links: Mapping[str, str] | None = None,
) -> str:
    """The sources panel: each cited passage under its [n], with title, link or path, page, score and text; then
    the passages retrieved but not cited, under their own heading and without a number, since they are not
    citations; then the web search results the answer was given, apart from the knowledge base's passages.
    `links`: chunk id → its address in the viewer, which the passage's title links to."""
    if not cited and not retrieved and not web:
        return "_No sources for this answer._"
    names = names or {}
    links = links or {}
    blocks = [_passage_markdown(p, names, f"[{p.n}] ", links.get(p.chunk_id, "")) for p in cited]
    if not cited and retrieved:
        blocks.append("_The answer cites none of the passages it was given._")
    if retrieved:
        blocks.append("#### Retrieved, not cited")
        blocks.extend(_passage_markdown(p, names, "", links.get(p.chunk_id, "")) for p in retrieved)
    if web:
        blocks.append("#### Web results")
        blocks.extend(_web_markdown(r) for r in web)
    return "\n\n".join(blocks)


def _web_markdown(result: WebResult) -> str:
    """A web search result (outside text): its title and snippet as text, its address as `web_link`."""
    snippet = quote(plain_text(result.snippet, MAX_PASSAGE_CHARS)) if result.snippet else ""
    return f"**{text_only(result.title or 'untitled')}**  \n{web_link(result.url)}\n\n{snippet}".rstrip()


def _passage_markdown(p: Passage, names: Mapping[str, str], label: str = "", address: str = "") -> str:
    link = p.source.startswith(("http://", "https://"))
    where = f"[{p.source}]({p.source})" if link else path_html(p.source, names)
    facts = [where]
    if p.location:
        facts.append(p.location)
    if p.score is not None:
        facts.append(f"score {p.score:.3f}")
    if p.similarity is not None:
        facts.append(f"similarity {p.similarity:.2f}")
    title = md_escape(p.title or "untitled")
    # A link opens the passage in its document, beside the chat (the [n] escaped inside a link's text).
    title = f"[{md_escape(label)}{title}]({address})" if address else f"{label}{title}"
    return f"**{title}**  \n{' · '.join(facts)}\n\n{quote(plain_text(p.text, MAX_PASSAGE_CHARS))}"


def history_messages(
    turns: Sequence[tuple[str, str]],
    shown: Mapping[str, Turn] | None = None,
    names: Mapping[str, str] | None = None,
    addresses: AddressOf | None = None,
) -> list[gr.ChatMessage]:
    """A past conversation: each answer after the tool calls it made (`shown`, by answer text), as it streamed,
    its citations links to the viewer (`addresses`)."""
    out = []
    for role, text in turns:
        turn = (shown or {}).get(text.strip()) if role != "user" else None
        for call in turn.tools if turn else []:
            out.append(tool_message(call, names))
        shown_text = text if role == "user" else safe_markdown(text, names or {})  # a model's words, made safe
        if turn is not None:
            shown_text = link_citations(shown_text, turn.cited, addresses)
        out.append(gr.ChatMessage(role="user" if role == "user" else "assistant", content=shown_text))
    return out


def thread_label(info: ThreadInfo) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated_at))
    return f"{info.title or '(untitled)'} · {when} · {info.model}"
