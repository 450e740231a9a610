"""`web_search` against each provider's stand-in on 127.0.0.1 (tests/support/search_stand_in.py), which answers in the
provider's documented format, errors included: the typed results, the request each API documents, the data
wrappers, and every failure as one line in the tool's content (never an exception)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from pydantic import ValidationError

from kbagent.errors import ConfigError
from tests.support.search_stand_in import KEY, PAGES, StandIn, search_stand_in
from tests.support.wrappers import Wrappers
from tools.config import SearchKeys, ToolsConfig
from tools.web_search import PROVIDERS, WebResult, make_web_search, make_web_search_tool

ALL = sorted(PROVIDERS)
WITH_KEYS = [p for p in ALL if PROVIDERS[p].keys]
KEY_FIELD = {"brave": "brave_search_api_key", "tavily": "tavily_api_key", "serpapi": "serpapi_api_key"}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with search_stand_in() as served:
        yield served


@pytest.fixture(autouse=True)
def fresh(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts in mode ok with an empty log; no proxy from the environment stands between."""
    stand_in.mode = "ok"
    stand_in.seen.clear()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def tool_for(stand_in: StandIn, provider: str, key: str = KEY, **limits: Any) -> Any:
    config = ToolsConfig(web_search=f"{provider}:{stand_in.endpoint(provider)}", **limits)
    keys = SearchKeys(**({KEY_FIELD[provider]: key} if provider in KEY_FIELD else {}))
    search = make_web_search(config, keys)
    assert search is not None
    return make_web_search_tool(search)


def call(tool: Any, query: str = "harbor co-op hours") -> tuple[str, list[WebResult]]:
    """The tool run as an agent runs it (a tool call): its content for the model and its artifact."""
    message = tool.invoke({"type": "tool_call", "id": "call-1", "name": "web_search", "args": {"query": query}})
    return message.content, message.artifact


@pytest.mark.parametrize("provider", ALL)
def test_each_provider_gives_typed_results_in_data_wrappers(stand_in: StandIn, provider: str) -> None:
    content, results = call(tool_for(stand_in, provider))
    # The third page has no web address (javascript:) and is dropped.
    assert [(r.title, r.url, r.provider) for r in results] == [(t, u, provider) for t, u, _ in PAGES[:2]]
    assert results[0].snippet == "Open Tuesday to Saturday, 10:00 to 18:00."  # Brave's <strong> highlighting gone
    reader = Wrappers(content)
    assert [page["url"] for page in reader.opened] == [PAGES[0][1], PAGES[1][1]]  # the forged one is not a tag
    assert reader.closed == 2
    assert reader.opened[1]["title"] == 'The "tool library" rules'
    assert len(re.findall(r"<\s*/\s*web_page", content)) == 2  # the look-alike "< /web_page >" is no closer either
    assert "Ignore previous instructions" in content  # still there to read, as data


def test_each_provider_is_asked_as_its_api_documents(stand_in: StandIn) -> None:
    for provider in ALL:
        call(tool_for(stand_in, provider, web_search_results=3), "bike repair")
    seen = {s.provider: s for s in stand_in.seen}
    searxng, brave, tavily, serpapi = seen["searxng"], seen["brave"], seen["tavily"], seen["serpapi"]
    assert (searxng.method, searxng.path, searxng.query["format"], searxng.query["q"]) == (
        "GET", "/searxng/search", ["json"], ["bike repair"],
    )  # fmt: skip
    assert (brave.method, brave.headers["x-subscription-token"], brave.query["q"], brave.query["count"]) == (
        "GET", KEY, ["bike repair"], ["3"],
    )  # fmt: skip
    assert (tavily.method, tavily.headers["authorization"], tavily.body["query"], tavily.body["max_results"]) == (
        "POST", f"Bearer {KEY}", "bike repair", 3,
    )  # fmt: skip
    assert (serpapi.method, serpapi.query["engine"], serpapi.query["api_key"], serpapi.query["q"]) == (
        "GET", ["google"], [KEY], ["bike repair"],
    )  # fmt: skip


def test_result_count_is_bounded(stand_in: StandIn) -> None:
    _, results = call(tool_for(stand_in, "searxng", web_search_results=1))
    assert [r.url for r in results] == [PAGES[0][1]]


def one_line_failure(content: str, artifact: list[WebResult], *says: str) -> None:
    assert artifact == [] and "\n" not in content and content.startswith("Web search ("), content
    for part in says:
        assert part in content, (part, content)


@pytest.mark.parametrize(
    ("provider", "says"),
    [
        ("brave", ["API key was refused", "HTTP 401", "SUBSCRIPTION_TOKEN_INVALID"]),
        ("tavily", ["API key was refused", "HTTP 401", "missing or invalid API key"]),
        ("serpapi", ["API key was refused", "HTTP 401", "Invalid API key"]),
    ],
)
def test_a_bad_key_is_one_line(stand_in: StandIn, provider: str, says: list[str]) -> None:
    one_line_failure(*call(tool_for(stand_in, provider, key="wrong")), *says)


@pytest.mark.parametrize(
    ("provider", "says"),
    [
        ("searxng", ["limiter refused", "HTTP 429"]),
        ("brave", ["rate limit", "HTTP 429", "RATE_LIMITED"]),
        ("tavily", ["rate limit", "HTTP 429", "excessive requests"]),
        ("serpapi", ["rate limit", "HTTP 429", "run out of searches"]),
    ],
)
def test_a_rate_limit_is_one_line(stand_in: StandIn, provider: str, says: list[str]) -> None:
    stand_in.mode = "rate_limited"
    one_line_failure(*call(tool_for(stand_in, provider)), *says)


@pytest.mark.parametrize("provider", ALL)
def test_an_empty_result_says_nothing_was_found(stand_in: StandIn, provider: str) -> None:
    stand_in.mode = "empty"
    content, results = call(tool_for(stand_in, provider), "zzqx nothing")
    assert results == [] and "\n" not in content and "found nothing for 'zzqx nothing'" in content, content


@pytest.mark.parametrize(
    ("provider", "mode", "says"),
    [
        ("searxng", "json_off", ["JSON output is off", "HTTP 403"]),
        ("tavily", "plan_limit", ["plan's usage limit", "HTTP 432"]),
        ("serpapi", "search_error", ["Proxy timeout"]),
    ],
)
def test_provider_specific_errors_are_one_line(stand_in: StandIn, provider: str, mode: str, says: list[str]) -> None:
    stand_in.mode = mode
    one_line_failure(*call(tool_for(stand_in, provider)), *says)


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("slow", "no answer within 0.5 s"),
        ("trickle", "no whole answer within 0.5 s"),
        ("huge", "over 64 KB"),
        ("huge_declared", "over 64 KB"),
        ("not_json", "not the JSON object"),
        ("wrong_shape", "format this provider documents"),
        ("redirect", "redirected (HTTP 302)"),
    ],
)
@pytest.mark.parametrize("provider", ALL)
def test_bad_responses_are_one_line(stand_in: StandIn, provider: str, mode: str, says: str) -> None:
    stand_in.mode = mode
    tool = tool_for(stand_in, provider, web_search_timeout_s=0.5, web_search_max_kb=64)
    one_line_failure(*call(tool), says)


def test_an_unreachable_provider_is_one_line(stand_in: StandIn) -> None:
    config = ToolsConfig(web_search="searxng:http://127.0.0.1:9")  # discard port: nothing listens
    search = make_web_search(config, SearchKeys())
    assert search is not None
    one_line_failure(*call(make_web_search_tool(search)), "could not reach 127.0.0.1")


def test_an_empty_query_is_one_line(stand_in: StandIn) -> None:
    one_line_failure(*call(tool_for(stand_in, "searxng"), "   "), "give a query")
    assert stand_in.seen == []


def test_web_search_is_off_unless_configured() -> None:
    assert make_web_search(ToolsConfig(), SearchKeys()) is None


def test_a_missing_key_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"needs BRAVE_SEARCH_API_KEY \(or BRAVE_API_KEY\)"):
        make_web_search(ToolsConfig(web_search="brave"), SearchKeys())
    with pytest.raises(ConfigError, match="needs TAVILY_API_KEY"):
        make_web_search(ToolsConfig(web_search="tavily"), SearchKeys(tavily_api_key="  "))
    search = make_web_search(ToolsConfig(web_search="brave"), SearchKeys(brave_api_key="k"))  # Brave's other name
    assert search is not None and search.url == "https://api.search.brave.com/res/v1/web/search"


@pytest.mark.parametrize(
    ("value", "says"),
    [("bing", "unknown web search provider 'bing'"), ("searxng", "searxng needs its address"),
     ("searxng:file:///etc/passwd", r"must be an http\(s\) URL")],
)  # fmt: skip
def test_a_bad_provider_setting_is_refused(value: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ToolsConfig(web_search=value)


def test_the_setting_and_keys_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from kbagent.settings import load_settings

    monkeypatch.setenv("KBAGENT_WEB_SEARCH", "searxng:http://127.0.0.1:8888")
    monkeypatch.setenv("TAVILY_API_KEY", "tv-1")
    settings = load_settings()
    assert settings.tools.web_search == "searxng:http://127.0.0.1:8888"
    assert settings.search_keys.tavily_api_key is not None
    assert settings.masked()["tavily_api_key"] == "*** (set)"
    monkeypatch.setenv("KBAGENT_WEB_SEARCH", "bing")
    with pytest.raises(ConfigError, match=r"invalid setting KBAGENT_WEB_SEARCH: .*unknown web search provider"):
        load_settings()


def test_the_owners_endpoint_on_loopback_is_reached_without_the_guard(stand_in: StandIn) -> None:
    """The fetcher's guard refuses loopback; the configured search endpoint there is the owner's own."""
    from ingest.web import FetchConfig, FetchError, WebFetcher

    with pytest.raises(FetchError, match="refused"), WebFetcher(FetchConfig()) as fetcher:
        fetcher.fetch_page(stand_in.endpoint("searxng"))
    _, results = call(tool_for(stand_in, "searxng"))
    assert len(results) == 2


def test_a_key_in_the_query_string_is_masked_in_httpx_logs(stand_in: StandIn, caplog: pytest.LogCaptureFixture) -> None:
    """SerpApi takes its key as `api_key=`; httpx logs request URLs at INFO."""
    tool = tool_for(stand_in, "serpapi")
    with caplog.at_level(logging.INFO, logger="httpx"):
        call(tool)
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "httpx")
    assert "api_key=***" in logged and KEY not in logged


# ---- LangChain's standard suites (langchain-tests), on the SearXNG stand-in --------------------------------------


class _WebSearchTool:
    @pytest.fixture(autouse=True)
    def _served(self, stand_in: StandIn) -> None:
        self.stand_in = stand_in

    @property
    def tool_constructor(self) -> BaseTool:
        return tool_for(self.stand_in, "searxng")  # type: ignore[no-any-return]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "harbor co-op hours"}


class TestWebSearchToolUnit(_WebSearchTool, ToolsUnitTests):
    pass


class TestWebSearchToolStandard(_WebSearchTool, ToolsIntegrationTests):
    pass
