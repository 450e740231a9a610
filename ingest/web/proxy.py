"""A tiny HTTP proxy on 127.0.0.1 that puts every browser request, redirect hops included, through the guard.

Playwright's request routing never sees redirect hops, but a proxy sees every connection the browser opens:
plain-HTTP requests are forwarded by the guarded httpx client (one hop each, no redirects followed here), and
CONNECT tunnels (HTTPS, WebSockets) are opened only to the address the guard checked.

Chromium also calls home on its own (account lists, update and model checks) to public hosts the guard would
let through, so the proxy serves only hosts the page being rendered asked for (`PageHosts`), and nothing
between renders.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin, urlsplit

import httpx

from ingest.web.config import FetchConfig
from ingest.web.errors import FetchError
from ingest.web.fetch import GuardedTransport
from ingest.web.guard import Guard

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
}
GRACE_S = 2.0
"""How long a request for a host not yet recorded waits for it: redirect hops and WebSockets are recorded from
Playwright's events, which can arrive a moment after Chromium has sent the request."""


class PageHosts:
    """The hosts of the page being rendered and of every request it made (recorded by the browser's request
    routing before the request is let go, and from its events); empty between renders."""

    def __init__(self) -> None:
        self._hosts: set[str] = set()
        self._open = False
        self._changed = threading.Condition()

    def open(self, url: str) -> None:
        with self._changed:
            self._hosts, self._open = set(), True
        self.add(url)

    def close(self) -> None:
        with self._changed:
            self._hosts, self._open = set(), False

    def add(self, url: str) -> None:
        host = _host(urlsplit(url).hostname or "")
        with self._changed:
            if self._open and host:
                self._hosts.add(host)
                self._changed.notify_all()

    def expects(self, host: str, wait_s: float = GRACE_S) -> bool:
        """Whether the current page asked for `host`, waiting a moment for an event still on its way."""
        host = _host(host)
        with self._changed:
            self._changed.wait_for(lambda: not self._open or host in self._hosts, wait_s)
            return self._open and host in self._hosts


def _host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


class GuardingProxy:
    """Started on a free port of 127.0.0.1; `refused` lists the requests turned away, `unrequested` the hosts
    among them that no page asked for (Chromium's own traffic)."""

    def __init__(self, guard: Guard, config: FetchConfig) -> None:
        self.guard = guard
        self.config = config
        self.pages = PageHosts()
        self.refused: list[str] = []
        self.unrequested: list[str] = []
        self.client = httpx.Client(
            transport=GuardedTransport(guard),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(config.timeout_s),
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="kbagent-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        assert isinstance(host, str)  # a TCP server's address, never a Unix socket's bytes
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def refuse(self, target: str, reason: str) -> None:
        self.refused.append(f"{target}: {reason}")

    def check_requested(self, host: str) -> None:
        """FetchError unless the page being rendered asked for `host`."""
        if not self.pages.expects(host):
            self.unrequested.append(_host(host))
            raise FetchError(f"{host} was not requested by the page being rendered")


def _handler_for(proxy: GuardingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_CONNECT(self) -> None:
            host, _, port_text = self.path.rpartition(":")
            try:
                port = int(port_text)
                proxy.check_requested(host)
                address = proxy.guard.resolve(host, port)
                upstream = socket.create_connection((address, port), timeout=proxy.config.timeout_s)
            except (FetchError, ValueError, OSError) as exc:
                if isinstance(exc, FetchError):
                    proxy.refuse(self.path, str(exc))
                self._fail(403 if isinstance(exc, FetchError) else 502, str(exc))
                return
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.close_connection = True
            _pipe(self.connection, upstream, proxy.config.timeout_s, 4 * proxy.config.max_bytes)

        def _forward(self) -> None:
            url = self.path
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                proxy.check_requested(proxy.guard.check_url(url).host)
                with proxy.client.stream(self.command, url, headers=headers, content=body) as response:
                    data = bytearray()
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > proxy.config.max_bytes:
                            raise FetchError(f"response too large: {url}")
            except FetchError as exc:
                proxy.refuse(url, str(exc))
                self._fail(403, str(exc))
                return
            except httpx.HTTPError as exc:
                self._fail(502, f"{type(exc).__name__}: {exc}")
                return
            if response.is_redirect:  # the browser follows it next: a hop the page asked for
                proxy.pages.add(urljoin(url, response.headers["location"]))
            self.send_response(response.status_code, response.reason_phrase)
            for key, value in response.headers.multi_items():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(bytes(data))

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _forward

        def _fail(self, status: int, message: str) -> None:
            payload = f"kbagent proxy: {message}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True

    return Handler


def _pipe(client: socket.socket, upstream: socket.socket, idle_s: float, max_bytes: int) -> None:
    """Copy bytes both ways until either side closes, goes idle, or the tunnel carries too much."""
    moved = 0
    with contextlib.closing(upstream), selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        last = time.monotonic()
        while time.monotonic() - last < idle_s and moved < max_bytes:
            for key, _ in selector.select(timeout=1.0):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
                moved += len(data)
                last = time.monotonic()
