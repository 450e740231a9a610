"""HTTP GET through the address guard, with limits on size, time and redirects.

The guard sits in httpx's network backend: every new connection resolves its host once, checks the address and
connects to exactly that address, while the URL keeps its host name so the Host header, SNI and certificate
checks stay right. Redirects are followed by hand so each hop is checked for scheme and credentials too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpcore
import httpx

from ingest.web.config import FetchConfig
from ingest.web.errors import FetchError, Refused
from ingest.web.guard import Guard

if TYPE_CHECKING:
    from httpcore import SOCKET_OPTION

REDIRECTS = (301, 302, 303, 307, 308)
ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,application/xml;q=0.5,*/*;q=0.1"


class GuardedBackend(httpcore.NetworkBackend):
    """A socket backend that only connects to addresses the guard approved, by address."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.guard.resolve(host, port)
        return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        raise Refused("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport with the guarded backend in its connection pool (no proxies from the environment)."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(guard),
        )


@dataclass
class Fetched:
    """One final response: the body is complete and within the size limit."""

    url: str
    final_url: str
    status: int
    reason: str
    mime: str
    charset: str | None
    body: bytes


class HttpFetcher:
    """A reusable guarded httpx client."""

    def __init__(self, config: FetchConfig, guard: Guard) -> None:
        self.config = config
        self.guard = guard
        self.client = httpx.Client(
            transport=GuardedTransport(guard),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(config.timeout_s),
            headers={"User-Agent": config.user_agent, "Accept": ACCEPT, "Accept-Language": "en;q=1, *;q=0.5"},
        )

    def close(self) -> None:
        self.client.close()

    def get(self, url: str) -> Fetched:
        """The final response after at most `max_redirects` checked hops; 4xx/5xx are returned, not raised."""
        deadline = time.monotonic() + self.config.timeout_s
        current = self.guard.check_url(url)
        for hop in range(self.config.max_redirects + 1):
            try:
                fetched, location = self._once(url, current, deadline)
            except Refused as exc:
                raise (Refused(f"redirect to {current} refused: {exc}") if hop else exc) from None
            if location is None:
                return fetched
            try:
                current = self.guard.check_url(current.join(location))
            except Refused as exc:
                raise Refused(f"redirect to {location} refused: {exc}") from None
        raise FetchError(f"too many redirects (more than {self.config.max_redirects})")

    def _once(self, url: str, current: httpx.URL, deadline: float) -> tuple[Fetched, str | None]:
        limit = self.config.max_bytes
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"timed out after {self.config.timeout_s:g} s")
        try:
            with self.client.stream("GET", current, timeout=httpx.Timeout(remaining)) as response:
                location = response.headers.get("location")
                if response.status_code in REDIRECTS and location:
                    return self._fetched(url, current, response, b""), location
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"page too large ({_mb(int(declared))} > {_mb(limit)})")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise FetchError(f"page too large (over {_mb(limit)})")
                    if time.monotonic() > deadline:
                        raise FetchError(f"timed out after {self.config.timeout_s:g} s")
                return self._fetched(url, current, response, bytes(body)), None
        except httpx.TimeoutException:
            raise FetchError(f"timed out after {self.config.timeout_s:g} s") from None
        except httpx.DecodingError as exc:
            raise FetchError(f"bad content encoding from {current}: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch {current}: {type(exc).__name__}: {exc or 'connection failed'}") from None

    @staticmethod
    def _fetched(url: str, current: httpx.URL, response: httpx.Response, body: bytes) -> Fetched:
        mime, _, params = response.headers.get("content-type", "").partition(";")
        charset = None
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "charset" and value.strip(" \"'"):
                charset = value.strip(" \"'").lower()
        return Fetched(
            url=url,
            final_url=str(current),
            status=response.status_code,
            reason=response.reason_phrase,
            mime=mime.strip().lower(),
            charset=charset,
            body=body,
        )


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
