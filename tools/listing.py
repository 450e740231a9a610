"""Every tool the agent may be offered and where it comes from, for `kbagent tools`: the registry's tools, web
search when a provider is configured, and the outside MCP servers' tools that their allow-lists let through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool

from tools.base import ToolParts
from tools.registry import build_tools

if TYPE_CHECKING:
    from tools.web_search import WebSearch


@dataclass(frozen=True)
class ToolInfo:
    """A tool as listed: its name, where it comes from, what it says it does, whether the local loop may run it."""

    name: str
    origin: str
    description: str
    local_loop: bool

    def as_dict(self) -> dict[str, str | bool]:
        return asdict(self)


def list_tools(web_search: WebSearch | None, mcp_tools: Sequence[BaseTool]) -> list[ToolInfo]:
    """The registry's tools, described by the tools themselves (built only to be read: nothing is searched or
    fetched): the built-in ones, then `web_search` (None when off), then the outside tools."""
    parts = ToolParts(scraper=lambda url: "", web_search=web_search, outside=mcp_tools)
    return [
        ToolInfo(entry.name, entry.origin, " ".join(str(entry.tool.description).split()), entry.local)
        for entry in build_tools(parts).values()
    ]
