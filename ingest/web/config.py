"""The web fetcher's settings section: which hosts it may reach and its limits in time and size."""

from __future__ import annotations

from pydantic import Field

from kbagent.sections import Section

DEFAULT_USER_AGENT = "kbagent/0.1 (+offline knowledge-base ingester)"


class FetchConfig(Section):
    allow_hosts: str = Field(
        "", description="Hosts, host:port or CIDRs the web fetcher may reach despite the guard (comma-separated)."
    )
    timeout_s: float = Field(
        20.0, gt=0, le=600, alias="fetch_timeout_s", description="Time limit for one page, redirects included."
    )
    max_mb: float = Field(10.0, gt=0, alias="fetch_max_mb", description="Larger web pages are refused.")
    max_redirects: int = Field(
        5, ge=0, le=30, alias="fetch_max_redirects", description="Redirect hops followed (each one checked)."
    )
    crawl_delay_s: float = Field(1.0, ge=0, le=60, description="Pause between requests to one site when crawling.")
    browser_path: str = Field(
        "",
        description="Chromium for JavaScript pages.",
        json_schema_extra={"shown_default": "Playwright's Chromium if installed, else the system one"},
    )
    user_agent: str = Field(DEFAULT_USER_AGENT, description="Sent with web requests.")

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 2**20)
