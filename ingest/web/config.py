"""The fetcher's limits, read from any settings-like object so `ingest` never imports the CLI's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_USER_AGENT = "kbagent/0.1 (+offline knowledge-base ingester)"


@dataclass(frozen=True)
class FetchConfig:
    allow_hosts: str = ""
    timeout_s: float = 20.0
    max_bytes: int = 10 * 2**20
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    browser_path: str = ""

    @classmethod
    def from_settings(cls, settings: Any) -> FetchConfig:
        """`KBAGENT_*` settings (allow_hosts, fetch_timeout_s, fetch_max_mb, ...) → limits; missing ones default."""
        default = cls()
        return cls(
            allow_hosts=getattr(settings, "allow_hosts", default.allow_hosts) or "",
            timeout_s=float(getattr(settings, "fetch_timeout_s", default.timeout_s)),
            max_bytes=int(float(getattr(settings, "fetch_max_mb", default.max_bytes / 2**20)) * 2**20),
            max_redirects=int(getattr(settings, "fetch_max_redirects", default.max_redirects)),
            user_agent=getattr(settings, "user_agent", "") or default.user_agent,
            browser_path=getattr(settings, "browser_path", "") or "",
        )
