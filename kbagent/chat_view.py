"""`kbagent ask` and `kbagent chat` in a terminal: the agent's events printed as they come."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from agent.events import Done, Error, Event, Phase, Sources, Token, ToolEnd, ToolStart
from agent.runner import Agent
from kbagent.errors import KbagentError

if TYPE_CHECKING:
    from tools.knowledge_search import Passage
    from tools.web_search import WebResult


class TerminalRenderer:
    """Tokens as a stream, tool calls as dim lines, then the cited sources, and apart from them (without [n]) the
    passages retrieved but not cited."""

    def __init__(self, console: Console, show_tools: bool = True, names: dict[str, str] | None = None) -> None:
        self.console = console
        self.names = names or {}  # source → its path relative to the folder it was ingested from
        self.show_tools = show_tools
        self.sources: list[Passage] = []  # cited
        self.retrieved: list[Passage] = []  # retrieved and not cited
        self.web: list[WebResult] = []  # web search results
        self.done: Done | None = None
        self.error: str | None = None

    def __call__(self, event: Event) -> None:
        out = self.console
        if isinstance(event, Token):
            out.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
        elif isinstance(event, ToolStart) and self.show_tools:
            out.print(f"[dim]→ {event.name}({json.dumps(event.args, ensure_ascii=False)[:200]})[/]")
        elif isinstance(event, ToolEnd) and self.show_tools:
            status = "ok" if event.ok else "[red]failed[/]"
            out.print(f"[dim]← {event.name} {status} in {event.seconds:.2f}s[/]")
        elif isinstance(event, Phase) and event.step == "checking":
            out.print("\n[dim]No source backs that answer: asking the model again…[/]", end="")
        elif isinstance(event, Sources):
            self.sources, self.retrieved, self.web = event.cited, event.retrieved, event.web
        elif isinstance(event, Done):
            self.done = event
            out.print()
            self.print_check(event)
            self.print_sources()
        elif isinstance(event, Error):
            self.error = event.message
            out.print(f"\n[red]error:[/] {event.message}", highlight=False)

    def print_check(self, done: Done) -> None:
        """The answer check's findings: a made-up answer replaced, or the sentences no source backs."""
        if done.retracted:
            self.console.print("[yellow]⚠ No source backs that answer; the agent replaced it:[/]")
            self.console.print(done.answer, markup=False, highlight=False)
        for u in [] if done.retracted else done.unsupported:
            self.console.print(
                f"[yellow]⚠ not found in the sources:[/] {escape(u.sentence)} ({escape(', '.join(u.claims))})",
                highlight=False,
            )

    def print_sources(self) -> None:
        if self.sources:
            self.console.print("\n[bold]Sources[/]")
            for p in self.sources:
                self.console.print(f"  [{p.n}] {self.line(p)}", markup=False, highlight=False)
        if self.retrieved:
            self.console.print("\n[bold]Retrieved, not cited[/]")
            for p in self.retrieved:
                self.console.print(f"  {self.line(p)}", markup=False, highlight=False)
        if self.web:
            self.console.print("\n[bold]Web results[/]")
            for r in self.web:  # outside text: one printable line each, no terminal control characters
                line = "".join(c if c.isprintable() else " " for c in f"{r.title} — {r.url}")
                self.console.print(f"  {line}", markup=False, highlight=False)

    def line(self, p: Passage) -> str:
        """A passage as "title — path (p. N)" (or slide, sheet, chapter), the path relative to the folder it was
        ingested from."""
        where = self.names.get(p.source, p.source) + (f" ({p.location})" if p.location else "")
        return f"{p.title} — {where}" if p.title else where


HELP = """Commands: /new (new conversation), /sources (sources of the last answer), /model provider:model,
/threads (past conversations), /open THREAD_ID, /help, /quit"""


class ChatSession:
    """`kbagent chat`: questions stream through the renderer; lines starting with / are commands."""

    def __init__(
        self, console: Console, make_agent: Callable[[str | None], Agent], model: str | None, thread: str | None
    ) -> None:
        self.console = console
        self.make_agent = make_agent
        self.agent = make_agent(model)
        self.thread_id = thread
        self.view = TerminalRenderer(console)

    def run(self) -> None:
        self.console.print(f"kbagent chat — model {self.agent.spec.label}. {HELP}", markup=False)
        while True:
            try:
                line = self.console.input("[bold]> [/]").strip()
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return
            if line in ("/quit", "/exit", "/q"):
                return
            if line.startswith("/"):
                self.command(line)
            elif line:
                self.ask(line)

    def ask(self, question: str) -> None:
        self.view = TerminalRenderer(self.console, names=self.agent.kb.display_names())
        for event in self.agent.stream(question, self.thread_id):
            self.view(event)
        if self.view.done:
            self.thread_id = self.view.done.thread_id

    def command(self, line: str) -> None:
        console, name, _, arg = self.console, *line.partition(" ")
        if name == "/new":
            self.thread_id = None
            console.print("(new conversation)")
        elif name == "/sources":
            has_any = self.view.sources or self.view.retrieved
            self.view.print_sources() if has_any else console.print("(no sources yet)")
        elif name == "/threads":
            for t in self.agent.threads.list(20):
                console.print(f"  {t.thread_id}  {t.title}", markup=False)
        elif name == "/open" and arg.strip():
            self.thread_id = arg.strip()
            for role, text in self.agent.history(self.thread_id):
                console.print(f"[bold]{role}:[/] {text}", highlight=False)
        elif name == "/model":
            try:
                self.agent = self.make_agent(arg.strip())
                console.print(f"(model: {self.agent.spec.label})")
            except KbagentError as exc:
                console.print(f"[red]error:[/] {exc}")
        else:
            console.print(HELP, markup=False)
