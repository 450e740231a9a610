"""How the app is served: theme, CSS, login, the host check and the page's content policy. Apart from the tabs, so
the layout carries no server policy and the launch options can be tested without building an app."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import gradio as gr
from starlette.middleware import Middleware

from kbagent.services.access import allowed_hosts, host_name, is_loopback, parse_auth
from ui.source_panel import PANEL_CSS, PANEL_JS

if TYPE_CHECKING:
    from gradio.routes import App
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from kbagent.settings import Settings

# A way in's lifespan: entered with the server's app while the server runs.
Lifespan = Callable[["App"], contextlib.AbstractAsyncContextManager[None]]


# What a page of the app may load: everything from the app itself, images only from it (or inline), nothing from
# anywhere else, so a model's answer that slips a remote image or script past the renderer still loads nothing.
# Gradio's pages need inline scripts and styles and `eval` (its front end compiles some of its code).
CONTENT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)
FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]  # local: no font CDN
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CSS = (
    """
#sources-panel { max-height: 640px; overflow-y: auto; }
#threads input { padding-right: 28px; text-overflow: ellipsis; }  /* the arrow never covers a title */
#chatbot .top-panel { position: static; align-self: flex-end; margin: 4px 4px 0 auto; }  /* above the messages */
#sources-table td, #eval-table td { vertical-align: top; }
@media (max-width: 640px) {  /* a phone: the conversation and the question first, then sources, then the rest */
  #chat-main { order: -2; }
  #chat-sources { order: -1; }
  .tab-container button { padding: 0 5px !important; font-size: 13px !important; }  /* every tab fits, no "…" */
  #chatbot { height: 45vh !important; }
}
.kb-eval { border-collapse: collapse; margin: 0.5em 0; }
.kb-eval td, .kb-eval th { padding: 4px 12px; border-bottom: 1px solid var(--border-color-primary); text-align: left; }
.kb-eval caption { text-align: left; font-weight: 600; padding-bottom: 6px; }
#kb-viewer-holder { display: contents; }  /* takes no room: the panel inside is fixed to the window */
"""
    + PANEL_CSS
)


def theme() -> gr.themes.Base:
    """Local fonts only, so a page never asks a font CDN for anything."""
    return gr.themes.Soft(primary_hue="teal", secondary_hue="slate", font=FONTS, font_mono=MONO)


class Guard:
    """In front of every route (Gradio's pages and API, /v1, /mcp): without a login, a request addressed to any
    other host name is refused with 421 (a page on another site that re-points its name at this machine, DNS
    rebinding, would otherwise be served as if it were this app); every response carries the content policy.
    `hosts` None: the login decides, any host."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.hosts:
                await _refuse_host(scope, send, host)
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"]
                headers.append((b"content-security-policy", CONTENT_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)


async def _refuse_host(scope: Scope, send: Send, host: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    message = (
        f"this app does not answer to the host {host[:100]!r}: without a login it answers to localhost, the address "
        "it listens on and KBAGENT_ALLOWED_HOSTS"
    )
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": "misdirected_request"}
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": 421, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@dataclass
class WayIn:
    """An endpoint for programs beside the UI (MCP, the OpenAI-compatible API): an ASGI app at `path`, and the
    lifespan it needs running (a session manager, say)."""

    path: str
    app: ASGIApp
    lifespan: Lifespan | None = None
    methods: tuple[str, ...] = ("GET", "POST", "DELETE")
    mount: bool = False  # `path` is a prefix (the app routes what is below it), not one endpoint
    login: Literal["program", "page"] = "program"  # "page": the browser's login cookie counts too


def _credentials(header: str) -> str:
    """user:password from an Authorization header: HTTP Basic, or a Bearer token written as user:password (what an
    OpenAI client sends as its API key)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError):
            return base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace")
        return ""
    return value.strip() if scheme.lower() == "bearer" else ""


class LoginRequired:
    """An ASGI app behind the app's login (KBAGENT_AUTH) for programs: every request must carry the same user and
    password; a missing or wrong one gets 401 with an OpenAI-style error body. (A class, not a function: Starlette
    routes a function as a request handler, an object as an ASGI app.)"""

    def __init__(self, app: ASGIApp, auth: tuple[str, str]) -> None:
        self.app = app
        self.expected = f"{auth[0]}:{auth[1]}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        given = _credentials(headers.get(b"authorization", b"").decode("latin-1")).encode()
        if scope["type"] == "lifespan" or secrets.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket without the login: refused at the handshake
            await send({"type": "websocket.close", "code": 1008})
            return
        error = {"message": "sign in: KBAGENT_AUTH's user:password", "type": "invalid_request_error"}
        body = json.dumps({"error": {**error, "param": None, "code": "invalid_api_key"}}).encode()
        headers_out = [(b"content-type", b"application/json"), (b"www-authenticate", b'Basic realm="kbagent"')]
        await send({"type": "http.response.start", "status": 401, "headers": headers_out})
        await send({"type": "http.response.body", "body": body})


class PageLoginRequired(LoginRequired):
    """`LoginRequired` for pages the app's own page opens (the viewer's): the login cookie Gradio gave the
    browser counts as well as the user and password; without either, 401."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _signed_in(scope):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _signed_in(scope: Scope) -> bool:
    """Whether the request carries a login cookie of the Gradio app serving it (`gradio.routes`' own check)."""
    from starlette.requests import Request

    app = scope.get("app")
    tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
    if not isinstance(tokens, dict) or not cookie_id:
        return False
    cookies = Request(scope).cookies
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return bool(token) and tokens.get(token) is not None


def _lifespan(ways_in: Sequence[WayIn]) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for way in ways_in:
                if way.lifespan is not None:
                    await stack.enter_async_context(way.lifespan(app))
            yield

    return lifespan


def launch(demo: gr.Blocks, settings: Settings, ways_in: Sequence[WayIn] = (), **kwargs: Any) -> tuple[App, str, str]:
    """Start the server with the host, port and login from the settings; never shared. `ways_in` are routed
    beside the UI, behind the same login."""
    app = settings.app
    auth = parse_auth(app.auth)
    if auth is None and not is_loopback(app.host):
        print(
            f"warning: the app listens on {app.host} without a login; anyone who can reach this machine can "
            "read and change the knowledge base. Set KBAGENT_AUTH=user:password.",
            file=sys.stderr,
        )
    options: dict[str, Any] = {
        "server_name": app.host,
        "server_port": app.port,
        "auth": auth,
        "auth_message": "kbagent: sign in" if auth else None,
        "share": False,
        "theme": theme(),
        "css": CSS,
        "js": PANEL_JS,
        "max_file_size": f"{math.ceil(settings.ingest.max_file_mb)}mb",
        "ssr_mode": False,
        "mcp_server": False,
        "pwa": False,
        "footer_links": ["api", "settings"],
        "show_error": False,
    }
    options.update(kwargs)
    options["share"] = False
    guard = Middleware(Guard, hosts=None if auth else allowed_hosts(settings))
    app_kwargs = {**options.get("app_kwargs", {})}
    app_kwargs["middleware"] = [guard, *app_kwargs.get("middleware", [])]
    if not ways_in:
        return demo.launch(**{**options, "app_kwargs": app_kwargs})
    blocking = not options.get("prevent_thread_lock")
    app_kwargs["lifespan"] = _lifespan(ways_in)
    result = demo.launch(**{**options, "prevent_thread_lock": True, "app_kwargs": app_kwargs})
    from starlette.routing import Mount, Route

    for way in ways_in:  # first, so no Gradio route (a catch-all among them) answers their paths
        guarded = PageLoginRequired if way.login == "page" else LoginRequired
        endpoint = guarded(way.app, auth) if auth else way.app
        route = Mount(way.path, endpoint) if way.mount else Route(way.path, endpoint, methods=list(way.methods))
        demo.app.router.routes.insert(0, route)
    if blocking:
        demo.block_thread()
    return result
