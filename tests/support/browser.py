"""The app in Debian's Chromium through Playwright, for the browser tests: where the browser is, how a page of
the app is opened and waited on, and which hosts count as this machine (every other request is refused)."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from ingest.web.browser import FLAGS

CHROMIUM = "/usr/bin/chromium"
ARGS = FLAGS  # the fetcher's own: headless, no background traffic, no name lookups
SAMPLE_FILES = ["policies/membership.md", "about/visit.html", "guides/fixing-a-flat.md"]
TIMEOUT_MS = 30_000
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def is_local(host: str | None) -> bool:
    host = (host or "").strip("[]").lower()
    if host in ("", "localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_app(context: Any, url: str) -> Any:
    """A new page of the app at `url`, once its question box is there."""
    page = context.new_page()
    page.goto(url)
    page.locator("#question textarea").wait_for()
    return page


def wait_until(predicate: Any, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
