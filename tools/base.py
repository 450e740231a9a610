"""What an agent tool is: the LangChain tool, and what the agent's two paths need to know about it.

Each tool module gives a factory `agent_tools(parts) -> list[AgentTool]` (none when a part it needs is not
configured); `tools.registry` lists the factories, once. The tool-calling path hands every tool to the model;
the retrieval-first path (small local models) offers the `local` ones, described by `local_spec`: the tool's own
schema (LangChain's `convert_to_openai_tool`), with a shorter description and fewer arguments where given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

if TYPE_CHECKING:
    from knowledge_base import KnowledgeBase
    from knowledge_base.retrieval import SearchOptions
    from tools.web_search import WebSearch

BUILT_IN = "built-in"

Rewrite = Callable[[Any, str], str]
"""`rewrite(context, query)`: a follow-up's query made stand-alone from the conversation. The context is the
agent's per-answer `TurnContext`, a type tools/ may not import (it depends on tools/), so it goes unchecked."""


@dataclass(frozen=True)
class ToolParts:
    """What the factories build tools from: the knowledge base and the agent's search settings, and the parts
    that are there only when configured (None or empty: the tools that need them are left out)."""

    kb: KnowledgeBase | None = None
    k: int = 5
    min_similarity: float | None = None
    search_options: SearchOptions | None = None
    rewrite: Rewrite | None = None
    """`rewrite(context, query)`: a follow-up's query made stand-alone from the conversation (the turn's context)."""
    scraper: Callable[[str], str] | None = None
    web_search: WebSearch | None = None
    outside: Sequence[BaseTool] = ()
    """Tools found at run time: an outside MCP server's (`tools.mcp_client.make_mcp_tools`)."""


@dataclass(frozen=True)
class AgentTool:
    """One tool as the agent offers it."""

    tool: BaseTool
    local: bool = False
    """The retrieval-first loop of small local models may call it."""
    local_description: str = ""
    """A shorter description for the small model (it reads every token slowly); empty: the tool's own."""
    local_args: tuple[str, ...] = ()
    """The arguments the small model is shown and may give (the 1.5B model writes only the query); empty: all."""
    passages: bool = False
    """Its artifact (`content_and_artifact`) is the list of `Passage`s it found: they, not its text, back the
    answer's claims, and the front ends render them."""
    step: str = ""
    """What the app shows while it runs ("Searching the knowledge base…"); empty: "Running NAME…"."""
    origin: str = BUILT_IN
    """Where it comes from, for `kbagent tools`."""
    opt_in: bool = False
    """Offered only to an answer that asks for it (the chat's web switch, `ask --web`), not to every answer."""

    @property
    def name(self) -> str:
        return self.tool.name

    def local_spec(self) -> dict[str, object]:
        """The tool as the small model reads it, in the OpenAI function format its chat template expects."""
        spec = convert_to_openai_tool(self.tool)
        function = spec["function"]
        if self.local_description:
            function["description"] = self.local_description
        if self.local_args:
            parameters = function["parameters"]
            parameters["properties"] = {k: v for k, v in parameters["properties"].items() if k in self.local_args}
            parameters["required"] = [a for a in self.local_args if a in parameters["properties"]]
        return spec


ToolFactory = Callable[[ToolParts], list[AgentTool]]
"""Settings and parts → the tools they make (none when what they need is not there)."""


@dataclass
class ToolRegistry(Mapping[str, AgentTool]):
    """The agent's tools by name; a second tool of the same name is refused, never silently shadows the first."""

    tools: dict[str, AgentTool] = field(default_factory=dict)

    @classmethod
    def of(cls, tools: Iterable[AgentTool]) -> ToolRegistry:
        registry = cls()
        for entry in tools:
            if entry.name in registry.tools:
                raise ValueError(f"two tools are named {entry.name!r}")
            registry.tools[entry.name] = entry
        return registry

    def __getitem__(self, name: str) -> AgentTool:
        return self.tools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    def langchain_tools(self, opt_in: bool = False) -> list[BaseTool]:
        """The tools for the tool-calling model; `opt_in`: the opt-in ones too."""
        return [entry.tool for entry in self.tools.values() if opt_in or not entry.opt_in]

    def local(self) -> list[AgentTool]:
        return [entry for entry in self.tools.values() if entry.local]
