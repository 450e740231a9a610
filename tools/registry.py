"""Every tool the agent may be offered, listed once: a factory per tool module, built from the settings' parts.

Adding a tool is a module with a LangChain tool and an `agent_tools(parts)` factory (`tools/calculator.py` is the
simplest), and one line in `FACTORIES`. Tools that need settings (web search's provider) or are found at run time
(an outside MCP server's) come from factories too, so they join this list, not a second one.
"""

from __future__ import annotations

from collections.abc import Sequence

from tools import calculator, knowledge_search, scraper, web_search
from tools.base import AgentTool, ToolFactory, ToolParts, ToolRegistry


def outside_tools(parts: ToolParts) -> list[AgentTool]:
    """The outside MCP servers' tools their allow-lists let through (built by `tools.mcp_client.make_mcp_tools`,
    only when servers are configured): never offered to the small local model, which was not measured on them."""
    return [AgentTool(tool, origin=str((tool.metadata or {}).get("origin", "MCP"))) for tool in parts.outside]


FACTORIES: tuple[ToolFactory, ...] = (
    knowledge_search.agent_tools,
    calculator.agent_tools,
    scraper.agent_tools,
    web_search.agent_tools,
    outside_tools,
)


def build_tools(parts: ToolParts, factories: Sequence[ToolFactory] | None = None) -> ToolRegistry:
    """The tools `parts` allow, in the order of `factories` (by default `FACTORIES`)."""
    return ToolRegistry.of(
        entry for factory in (FACTORIES if factories is None else factories) for entry in factory(parts)
    )
