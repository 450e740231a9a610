"""Web pages → text: the guarded fetcher (every connection goes through the address guard, pages come back as
Markdown) and URL, crawl and sitemap ingestion on top of it.

`kbagent ingest URL` uses both; the agent's scraping tool (`tools/scraper.py`) uses the fetcher.
"""

from __future__ import annotations

from ingest.web.config import FetchConfig
from ingest.web.crawl import canonical_url, combine, ingest_web, is_url, parse_sitemap, site_of
from ingest.web.errors import FetchError, Refused
from ingest.web.fetch import Fetched
from ingest.web.fetcher import Page, WebFetcher, fetch_page
from ingest.web.guard import AllowList, Guard, refusal

__all__ = [
    "AllowList",
    "FetchConfig",
    "FetchError",
    "Fetched",
    "Guard",
    "Page",
    "Refused",
    "WebFetcher",
    "canonical_url",
    "combine",
    "fetch_page",
    "ingest_web",
    "is_url",
    "parse_sitemap",
    "refusal",
    "site_of",
]
