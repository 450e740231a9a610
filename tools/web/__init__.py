"""A safe web page fetcher: every connection goes through the address guard, pages come back as Markdown.

Serves `kbagent ingest URL` and the agent's scraping tool alike.
"""

from __future__ import annotations

from tools.web.config import FetchConfig
from tools.web.errors import FetchError, Refused
from tools.web.fetch import Fetched
from tools.web.guard import AllowList, Guard, refusal
from tools.web.scraper import Page, WebFetcher, fetch_page

__all__ = [
    "AllowList",
    "FetchConfig",
    "FetchError",
    "Fetched",
    "Guard",
    "Page",
    "Refused",
    "WebFetcher",
    "fetch_page",
    "refusal",
]
