"""Web pages → text: the guarded fetcher (every connection goes through the address guard, pages come back as
Markdown) and URL, crawl and sitemap ingestion on top of it.

`kbagent ingest URL` uses both; the agent's scraping tool (`tools/scraper.py`) uses the fetcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbagent import lazy

if TYPE_CHECKING:
    from ingest.web.config import FetchConfig
    from ingest.web.crawl import canonical_url, combine, ingest_web, is_url, parse_sitemap, site_of
    from ingest.web.errors import FetchError, Refused
    from ingest.web.fetch import Fetched
    from ingest.web.fetcher import Page, WebFetcher, fetch_page
    from ingest.web.guard import AllowList, Guard, refusal

_WHERE = {
    "FetchConfig": "config",
    "FetchError": "errors",
    "Refused": "errors",
    "Fetched": "fetch",
    "Page": "fetcher",
    "WebFetcher": "fetcher",
    "fetch_page": "fetcher",
    "AllowList": "guard",
    "Guard": "guard",
    "refusal": "guard",
    **dict.fromkeys(["canonical_url", "combine", "ingest_web", "is_url", "parse_sitemap", "site_of"], "crawl"),
}
__getattr__ = lazy.exports(__name__, {name: f"{__name__}.{module}" for name, module in _WHERE.items()})

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
