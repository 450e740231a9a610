"""The browser fixtures of the app's browser tests: one Chromium per module, a context per test that refuses (and
records) every request to a host that is not this machine and fails on any Content-Security-Policy violation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.browser import ARGS, CHROMIUM, RECORD_VIOLATIONS, TIMEOUT_MS, is_local


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def outside() -> list[str]:
    return []


@pytest.fixture
def context(browser: Any, outside: list[str]) -> Iterator[Any]:
    """A browser context whose route handler records (and refuses) every request to a non-loopback host; at the end,
    no page may have broken the Content-Security-Policy (the app works under it)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)

    def route(r: Any) -> None:
        url = urlparse(r.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and is_local(url.hostname):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    violations = [v for page in context.pages for v in page.evaluate("window.__csp || []")]
    context.close()
    assert violations == []
