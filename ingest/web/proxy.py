"""A tiny HTTP proxy on 127.0.0.1 that puts every browser request, redirect hops included, through the guard.

Playwright's request routing never sees redirect hops, but a proxy sees every connection the browser opens:
plain-HTTP requests are forwarded by the guarded httpx client (one hop each, no redirects followed here), and
CONNECT tunnels (HTTPS, WebSockets) are opened only to the address the guard checked.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class GuardingProxy:
    """Started on a free port of 127.0.0.1; `refused` lists the requests the guard turned away."""

    def __init__(self, guard: Guard, config: FetchConfig) -> None:
        self.guard = guard
        self.config = config
        self.refused: list[str] = []
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


def _handler_for(proxy: GuardingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_CONNECT(self) -> None:
            host, _, port_text = self.path.rpartition(":")
            try:
                port = int(port_text)
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
                proxy.guard.check_url(url)
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
