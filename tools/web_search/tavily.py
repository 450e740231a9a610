"""Tavily: `POST /search` with a Bearer key; results in `results`, errors as `{"detail": {"error": "..."}}`."""

from __future__ import annotations

import httpx

from tools.web_search.base import JsonObject, Provider, WebResult, listed

MAX_COUNT = 20  # the API's own limit


def _request(url: str, query: str, count: int, key: str) -> httpx.Request:
    body = {"query": query, "max_results": min(count, MAX_COUNT), "search_depth": "basic", "include_answer": False}
    return httpx.Request("POST", url, json=body, headers={"Authorization": f"Bearer {key}"})


def _results(data: JsonObject) -> list[WebResult]:
    return listed("tavily", data.get("results"), "title", "url", "content")


def _message(data: JsonObject) -> str:
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, dict):
        detail = detail.get("error")
    return detail if isinstance(detail, str) else ""


PROVIDER = Provider(
    name="tavily",
    title="Tavily",
    default_url="https://api.tavily.com/search",
    keys=("tavily_api_key",),
    request=_request,
    results=_results,
    message=_message,
    status_says={432: "the plan's usage limit is reached", 433: "the pay-as-you-go limit is reached"},
)
