"""SerpApi (Google results): `GET /search.json?engine=google`; results in `organic_results`, errors as
`{"error": "..."}` with an HTTP status, and an empty search as a *successful* search whose `error` says so."""

from __future__ import annotations

import httpx

from tools.web_search.base import JsonObject, Provider, SearchFailed, WebResult, listed, member


def _request(url: str, query: str, count: int, key: str) -> httpx.Request:
    params = {"engine": "google", "q": query, "api_key": key, "output": "json"}
    return httpx.Request("GET", url, params=params, headers={"Accept": "application/json"})


def _results(data: JsonObject) -> list[WebResult]:
    status = member(data.get("search_metadata") or {}, "status")
    if status == "Error":
        raise SearchFailed(_message(data) or "the search failed")
    # "Fully empty" searches succeed with an `error` that says nothing was found and no organic_results.
    return listed("serpapi", data.get("organic_results", []), "title", "link", "snippet")


def _message(data: JsonObject) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) else ""


PROVIDER = Provider(
    name="serpapi",
    title="SerpApi",
    default_url="https://serpapi.com/search.json",
    keys=("serpapi_api_key",),
    request=_request,
    results=_results,
    message=_message,
    status_says={},
)
