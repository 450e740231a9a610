"""SearXNG, self-hosted: its search API with `format=json` (which must be on in its settings.yml)."""

from __future__ import annotations

import httpx

from tools.web_search.base import JsonObject, Provider, WebResult, listed


def _request(url: str, query: str, count: int, key: str) -> httpx.Request:
    endpoint = url.rstrip("/")
    if not endpoint.endswith("/search"):
        endpoint += "/search"
    return httpx.Request("GET", endpoint, params={"q": query, "format": "json"}, headers={"Accept": "application/json"})


def _results(data: JsonObject) -> list[WebResult]:
    return listed("searxng", data.get("results"), "title", "url", "content")


def _message(data: JsonObject) -> str:
    return ""  # its errors are plain pages, explained by their status


PROVIDER = Provider(
    name="searxng",
    title="SearXNG",
    default_url=None,
    keys=(),
    request=_request,
    results=_results,
    message=_message,
    status_says={
        403: "its JSON output is off: add json to search.formats in its settings.yml",
        429: "its limiter refused the request: let kbagent's address through (server.limiter, limiter.toml)",
    },
)
