"""`kbagent ask` and `kbagent chat` in a terminal: the agent's events printed as they come."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from agent.events import Done, Error, Event, Sources, Token, ToolEnd, ToolStart


class TerminalRenderer:
    """Tokens as a stream, tool calls as dim lines, then the cited sources."""

    def __init__(self, console: Console, show_tools: bool = True) -> None:
        self.console = console
        self.show_tools = show_tools
        self.sources: list[Any] = []
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
        elif isinstance(event, Sources):
            self.sources = event.passages
        elif isinstance(event, Done):
            self.done = event
            out.print()
            self.print_sources()
        elif isinstance(event, Error):
            self.error = event.message
            out.print(f"\n[red]error:[/] {event.message}", highlight=False)

    def print_sources(self) -> None:
        if not self.sources:
            return
        self.console.print("\n[bold]Sources[/]")
        for p in self.sources:
            self.console.print(f"  {p.label}", markup=False, highlight=False)


HELP = """Commands: /new (new conversation), /sources (sources of the last answer), /model provider:model,
/threads (past conversations), /open THREAD_ID, /help, /quit"""
