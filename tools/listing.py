"""Every tool the agent may be offered and where it comes from, for `kbagent tools`: the built-in ones, web search
when a provider is configured, and the outside MCP servers' tools that their allow-lists let through."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

from tools.calculator import make_calculator_tool
from tools.knowledge_search import make_search_tool
from tools.scraper import make_scrape_tool

BUILT_IN = "built-in"


@dataclass(frozen=True)
class ToolInfo:
    """A tool as listed: its name, where it comes from, what it says it does, whether the local loop may run it."""

    name: str
    origin: str
    description: str
    local_loop: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _info(tool: Any, origin: str, local_loop: bool) -> ToolInfo:
    return ToolInfo(tool.name, origin, " ".join(str(tool.description).split()), local_loop)


def built_in_tools() -> list[ToolInfo]:
    """kbagent's own tools, described by the tools themselves (built only to be read: nothing is searched)."""
    tools = [make_search_tool(cast(Any, None)), make_calculator_tool(), make_scrape_tool(lambda url: "")]
    return [_info(tool, BUILT_IN, local_loop=True) for tool in tools]


def list_tools(web_search: Any | None, mcp_tools: list[Any]) -> list[ToolInfo]:
    """The built-in tools, then `web_search` (a `WebSearch`, or None when off), then the outside tools."""
    listed = built_in_tools()
    if web_search is not None:
        from tools.web_search import make_web_search_tool

        listed.append(_info(make_web_search_tool(web_search), f"web search: {web_search.origin}", local_loop=True))
    listed += [_info(tool, tool.metadata["origin"], local_loop=False) for tool in mcp_tools]
    return listed
