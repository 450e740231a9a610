"""The agent tools' settings: web search (which provider, its limits) and outside tools over MCP (the servers file,
the limits every outside call gets). Provider keys are read under the providers' usual names (`SearchKeys`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from kbagent.sections import Section


class ToolsConfig(Section):
    web_search: str = Field(
        "",
        description="Web search for the agent: PROVIDER or PROVIDER:URL, one of searxng:URL (your SearXNG, its JSON "
        "API), brave, tavily, serpapi (a URL after them replaces the provider's endpoint). Empty: off.",
    )
    web_search_results: int = Field(5, ge=1, le=20, description="Results one web search gives the model.")
    web_search_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Time limit for one web search, the whole response included."
    )
    web_search_max_kb: int = Field(
        2048, ge=16, le=65536, description="Larger search responses are refused (KB, after decompression)."
    )
    mcp_servers: Path | None = Field(
        None,
        description="A JSON file of outside MCP servers whose tools the agent may call, in the desktop clients' "
        'format ({"mcpServers": {"name": {"command", "args", "env"} or {"url", "headers"}}}), with per-server '
        "allowTools, timeoutSeconds and maxOutputChars. Unset: no outside tools.",
    )
    mcp_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Time limit for one outside tool call (a server's timeoutSeconds overrides)."
    )
    mcp_max_output_chars: int = Field(
        20000,
        ge=100,
        le=1_000_000,
        description="A longer outside tool result is refused with one line (a server's maxOutputChars overrides).",
    )
    mcp_start_timeout_s: float = Field(
        60.0, gt=0, le=600, description="Time an outside MCP server has to start and list its tools."
    )

    @field_validator("web_search")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        value = value.strip()
        if value:  # the providers (httpx, LangChain's tools) load only when one is chosen
            from tools.web_search import parse_choice

            parse_choice(value)  # a ValueError names what is wrong
        return value


class SearchKeys(Section):
    """Web search providers' keys, under the names their documentation uses."""

    brave_search_api_key: SecretStr | None = Field(None, description="Brave Search API's key, for brave.")
    brave_api_key: SecretStr | None = Field(
        None,
        description="Brave Search API's key under the other name Brave uses (read when BRAVE_SEARCH_API_KEY is unset).",
    )
    tavily_api_key: SecretStr | None = Field(None, description="Tavily's key, for tavily.")
    serpapi_api_key: SecretStr | None = Field(None, description="SerpApi's key, for serpapi.")
