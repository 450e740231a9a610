"""Brave Search API: `GET /res/v1/web/search` with the key in `X-Subscription-Token`; results in `web.results`,
errors as `{"type": "ErrorResponse", "error": {"code", "detail", ...}}`."""

from __future__ import annotations

import httpx

from tools.web_search.base import JsonObject, Provider, WebResult, listed, member

MAX_COUNT = 20  # the API's own limit


def _request(url: str, query: str, count: int, key: str) -> httpx.Request:
    params = {"q": query, "count": str(min(count, MAX_COUNT)), "text_decorations": "false"}
    headers = {"Accept": "application/json", "X-Subscription-Token": key}
    return httpx.Request("GET", url, params=params, headers=headers)


def _results(data: JsonObject) -> list[WebResult]:
    web = data.get("web") or {}  # absent when nothing was found
    return listed("brave", member(web, "results", []), "title", "url", "description")


def _message(data: JsonObject) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return ""
    return " ".join(str(error[k]) for k in ("code", "detail") if error.get(k))


PROVIDER = Provider(
    name="brave",
    title="Brave Search",
    default_url="https://api.search.brave.com/res/v1/web/search",
    keys=("brave_search_api_key", "brave_api_key"),
    request=_request,
    results=_results,
    message=_message,
    status_says={},
)
