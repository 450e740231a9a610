"""The chat's "Search the web too" switch in Debian's Chromium: off, the answer comes from the knowledge base and no
web search is made; on, the web result is listed in the Sources panel with its address, and the page requests
nothing from the result's host (the SearXNG stand-in is on loopback; the result pages are not)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder
from tests.support import parts
from tests.support.browser import ARGS, CHROMIUM, TIMEOUT_MS, is_local
from tests.support.scripted_model import tool_call
from tests.support.search_stand_in import PAGES, StandIn, search_stand_in
from tests.support.ui_app import CitingModel, RunningApp, running_app

pytestmark = [pytest.mark.slow, parts.requires("Chromium", Path(CHROMIUM).exists())]
HOURS_URL = PAGES[0][1]


class WebModel(CitingModel):
    """Searches the web first when it is offered web_search, and answers from the first result; otherwise cites
    the knowledge base as the CitingModel does."""

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage) and "web_search" in self.bound_tools:
            return tool_call("web_search", {"query": str(last.content)[:200]}, f"call-{uuid.uuid4().hex[:8]}")
        if isinstance(last, ToolMessage) and last.name == "web_search":
            return AIMessage("The Harbor Co-op is open Tuesday to Saturday, 10:00 to 18:00.")
        return super()._next(messages)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with search_stand_in() as served:
        yield served


@pytest.fixture(scope="module")
def web_ui(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder, stand_in: StandIn
) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("ui-web")
    settings = Settings(
        data_dir=tmp / "data",
        collection=f"t{uuid.uuid4().hex[:12]}",
        web_search=f"searxng:{stand_in.endpoint('searxng')}",
        _env_file=None,
    )
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "ferries.md").write_text("# Ferry timetable\n\nThe first ferry leaves at 07:40 from Pier 9.\n")
    with running_app(settings, embedder, docs=[docs], model=WebModel()) as running:
        yield running


def test_the_web_switch_searches_the_web_and_lists_the_result_without_loading_it(
    web_ui: RunningApp, stand_in: StandIn
) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", lambda r: r.continue_() if is_local(urlparse(r.request.url).hostname) else (
            outside.append(r.request.url), r.abort()))  # fmt: skip
        page = context.new_page()
        page.goto(web_ui.url)
        question = page.locator("#question textarea")
        question.wait_for()
        sources = page.locator("#sources-panel")

        question.fill("When does the first ferry leave?")
        question.press("Enter")
        sources.get_by_text("Ferry timetable").first.wait_for()
        assert stand_in.seen == [] and "Web results" not in sources.inner_text()

        page.locator("#web-search input[type=checkbox]").check()
        page.locator("#ask").wait_for()
        question.fill("When is the Harbor Co-op open?")
        question.press("Enter")
        sources.get_by_text("Web results").wait_for()
        link = sources.locator(f'a[href="{HOURS_URL}"]')
        link.wait_for()
        assert "Harbor Co-op opening hours" in sources.inner_text() and len(stand_in.seen) == 1
        assert page.locator("#chatbot").get_by_text("10:00 to 18:00").count() >= 1
        assert outside == []  # the result's page is a link, never loaded
        browser.close()
