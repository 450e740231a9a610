"""What every web search provider shares: the typed result, the provider record and the one-line failure."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

import httpx

MAX_TITLE_CHARS = 300
MAX_SNIPPET_CHARS = 1000
MAX_URL_CHARS = 2048

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A value of a decoded JSON body (`json.loads`): what a provider's answer is read from."""
JsonObject: TypeAlias = dict[str, JsonValue]


@dataclass(frozen=True)
class WebResult:
    """One search result: what the model reads, and what an app shows as a web source (never parsed from text)."""

    title: str
    url: str
    snippet: str
    provider: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class SearchFailed(Exception):
    """A search that gave no results: its message is one line for the model and the user."""


@dataclass(frozen=True)
class Provider:
    """A web search API: how to ask it and how to read its documented answers.

    `request(url, query, count, key)` builds the HTTP request; `results(data)` reads a successful JSON body (and
    raises `SearchFailed` for an error the provider reports inside one); `message(data)` is the provider's own
    explanation in an error body, or "".
    """

    name: str
    title: str
    default_url: str | None  # None: the owner gives the URL (a self-hosted service)
    keys: tuple[str, ...]  # `SearchKeys` fields, the first one set is used; () = no key
    request: Callable[[str, str, int, str], httpx.Request]
    results: Callable[[JsonObject], list[WebResult]]
    message: Callable[[JsonObject], str]
    status_says: dict[int, str]  # what a status means for this provider, beside the common meanings


def plain_text(value: object, max_chars: int) -> str:
    """A provider's title or snippet as one line of plain text: entities decoded, highlighting tags dropped."""
    text = html.unescape(value) if isinstance(value, str) else ""
    if "<" in text:
        from bs4 import BeautifulSoup

        text = BeautifulSoup(text, "html.parser").get_text()
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"


def web_url(value: object) -> str | None:
    """`value` if it is an http(s) address a browser may open, else None (a result is dropped without one)."""
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS:
        return None
    parts = urlsplit(value.strip())
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def result(provider: str, title: object, url: object, snippet: object) -> WebResult | None:
    """A typed result from a provider's fields, or None when it has no web address."""
    address = web_url(url)
    if address is None:
        return None
    name = plain_text(title, MAX_TITLE_CHARS) or address
    return WebResult(name, address, plain_text(snippet, MAX_SNIPPET_CHARS), provider)


def listed(provider: str, items: object, title: str, url: str, snippet: str) -> list[WebResult]:
    """The results in a provider's list of objects, by the names of their title, URL and snippet fields."""
    if not isinstance(items, list):
        raise ValueError("no list of results")
    found = (result(provider, i.get(title), i.get(url), i.get(snippet)) for i in items if isinstance(i, dict))
    return [r for r in found if r is not None]


def member(data: JsonValue, name: str, default: JsonValue = None) -> JsonValue:
    """`data[name]` of a JSON object (`default` when absent); a ValueError when `data` is no object."""
    if not isinstance(data, dict):
        raise ValueError(f"no object holding {name!r}")
    return data.get(name, default)
