"""The official `mcp` client on an event-loop thread of its own, one long-lived session per outside server, called
synchronously (the agent streams synchronously; the SDK is async).

Every call is bounded: a time limit (the session stays up; the call is cancelled), an output size limit (checked on
the text before it goes anywhere; over HTTP also on the bytes as they arrive), and a server that stops mid-call is
one line, started again on its next call. Nothing here raises into an answer: a call gives an `McpCall`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CONNECTION_CLOSED,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    Implementation,
    ResourceLink,
    TextContent,
)

from tools.mcp_client.servers import ServerSpec

if TYPE_CHECKING:
    from mcp.client import Transport
    from mcp.client._transport import TransportStreams

T = TypeVar("T")
MAX_TOOLS_PER_SERVER = 200
MAX_LISTING_PAGES = 20
MAX_SCHEMA_CHARS = 20000
GRACE_S = 5.0  # beyond a call's own limit, for the loop to hand back its answer
STOP_WAIT_S = 10.0  # the SDK stops a stdio server within a few seconds (stdin closed, then SIGTERM, then SIGKILL)


@dataclass(frozen=True)
class ListedTool:
    """A tool an outside server lists, as it describes it."""

    server: str
    name: str
    description: str
    input_schema: dict[str, object]
    destructive: bool


@dataclass(frozen=True)
class McpCall:
    """One outside tool call, for the model (`text`, or `error` when it failed) and the audit log."""

    server: str
    tool: str
    arguments: dict[str, object]
    text: str
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.error


class CallFailed(Exception):
    """A call that gave no usable output: the message is one line."""


@dataclass
class _Server:
    spec: ServerSpec
    client: Client | None = None  # while its session is up
    listed: list[ListedTool] = field(default_factory=list)
    error: str = ""
    stop: asyncio.Event | None = None
    lock: asyncio.Lock | None = None


class McpHub:
    """The outside servers' sessions. `start()` connects them all (each within `start_timeout_s`); `close()` ends
    them. Thread-safe: calls from any thread run on the hub's loop."""

    def __init__(self, specs: list[ServerSpec], start_timeout_s: float = 60.0, log_dir: Path | None = None) -> None:
        self.start_timeout_s = start_timeout_s
        self._servers = {spec.name: _Server(spec) for spec in specs}
        self.problems: list[str] = []  # one line per server that could not start
        self._holders: set[asyncio.Task[None]] = set()  # sessions open or closing
        self._log_dir = log_dir
        self._logs: list[TextIO] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kbagent-mcp", daemon=True)

    # ---- the sync side ---------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Connects every server and lists its tools; one line per server that could not start."""
        self._thread.start()
        with contextlib.suppress(CallFailed):  # each server's start is bounded; this only guards the guard
            self._run(self._start_all(), self.start_timeout_s + GRACE_S)
        failed = [f"MCP server '{s.spec.name}' could not start: {s.error}" for s in self._servers.values() if s.error]
        self.problems += failed
        return failed

    @property
    def specs(self) -> list[ServerSpec]:
        return [s.spec for s in self._servers.values()]

    def listed(self, server: str) -> list[ListedTool]:
        """The tools `server` listed when it (last) started."""
        return list(self._servers[server].listed)

    def call(self, server: str, tool: str, arguments: dict[str, object]) -> McpCall:
        """Calls `tool` on `server` within its limits; never raises."""
        state = self._servers[server]
        started = time.monotonic()
        try:
            text = self._run(self._call(state, tool, arguments), state.spec.timeout_s + self.start_timeout_s + GRACE_S)
            error = ""
        except CallFailed as exc:
            text, error = "", f"MCP server '{server}', tool {tool}: {exc}"
        return McpCall(server, tool, arguments, text, error, round(time.monotonic() - started, 3))

    def close(self) -> None:
        """Ends every session (stdio servers are stopped) and the loop thread."""
        if self._thread.is_alive():
            with contextlib.suppress(CallFailed):
                self._run(self._stop_all(), STOP_WAIT_S + GRACE_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(GRACE_S)
        for log in self._logs:
            log.close()

    def __enter__(self) -> McpHub:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, work: Coroutine[object, object, T], wait_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(wait_s)
        except TimeoutError:
            future.cancel()
            raise CallFailed(f"no answer within {wait_s:g} s: cut off") from None

    # ---- the loop side ---------------------------------------------------------------------------

    async def _start_all(self) -> None:
        async def start(state: _Server) -> None:
            with contextlib.suppress(CallFailed):
                await self._connect(state)

        await asyncio.gather(*(start(s) for s in self._servers.values()))

    async def _stop_all(self) -> None:
        for state in self._servers.values():
            if state.stop is not None:
                state.stop.set()
        if self._holders:
            await asyncio.wait(self._holders, timeout=STOP_WAIT_S)

    async def _connect(self, state: _Server) -> None:
        """A session for `state` (a new one if it has none), or `CallFailed` saying why not."""
        state.lock = state.lock or asyncio.Lock()
        async with state.lock:
            if state.client is not None:
                return
            ready, state.stop = asyncio.Event(), asyncio.Event()
            holder = asyncio.create_task(self._hold(state, ready, state.stop))
            self._holders.add(holder)
            holder.add_done_callback(self._holders.discard)
            try:
                await asyncio.wait_for(ready.wait(), self.start_timeout_s)
            except TimeoutError:
                holder.cancel()  # its exit stops the server process
                state.error = f"no answer within {self.start_timeout_s:g} s"
            if state.client is None:
                raise CallFailed(f"could not start: {state.error}")

    async def _hold(self, state: _Server, ready: asyncio.Event, stop: asyncio.Event) -> None:
        """Keeps one session open until `stop`: the SDK's client is entered and left in this one task."""
        client = Client(self._transport(state.spec), client_info=Implementation(name="kbagent", version="1"))
        try:
            async with client:
                state.listed = await _list_tools(client, state.spec.name)
                state.client, state.error = client, ""
                ready.set()
                await stop.wait()
        except Exception as exc:  # an ExceptionGroup from the SDK's task groups too
            state.error = one_line(exc)
        finally:
            if state.client is client:  # not a newer session, started while this one was closing
                state.client = None
            ready.set()

    async def _call(self, state: _Server, tool: str, arguments: dict[str, object]) -> str:
        await self._connect(state)
        client = state.client
        if client is None:  # never: `_connect` gave it a session, and nothing ran since
            raise CallFailed("the session closed before the call")
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), state.spec.timeout_s)
        except TimeoutError:
            raise CallFailed(f"no answer within {state.spec.timeout_s:g} s: cut off") from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._drop(state, client)
                raise CallFailed("the server stopped during the call (it exited or closed the connection)") from None
            raise CallFailed(one_line(exc)) from None
        except Exception as exc:
            raise CallFailed(one_line(exc)) from None
        return result_text(result, state.spec.max_output_chars)

    def _drop(self, state: _Server, client: Client) -> None:
        """Ends a session whose server is gone; the next call starts the server again."""
        if state.client is client:
            state.client = None
            if state.stop is not None:
                state.stop.set()

    def _transport(self, spec: ServerSpec) -> Transport:
        if spec.command is not None:
            params = StdioServerParameters(command=spec.command, args=list(spec.args), env=spec.env, cwd=spec.cwd)
            return stdio_client(params, errlog=self._errlog(spec.name))
        return _http_transport(spec)

    def _errlog(self, name: str) -> TextIO:
        """Where a stdio server's stderr goes: its log file in `log_dir`, else nowhere (not the user's terminal)."""
        if self._log_dir is None:
            log = open(os.devnull, "w")  # noqa: SIM115  (closed by close())
        else:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            log = open(self._log_dir / f"mcp-{safe}.log", "a", encoding="utf-8")  # noqa: SIM115
        self._logs.append(log)
        return log


@contextlib.asynccontextmanager
async def _http_transport(spec: ServerSpec) -> AsyncIterator[TransportStreams]:
    """Streamable HTTP with the server's headers; every response's bytes bounded as they arrive."""
    cap = 8 * spec.max_output_chars + 65536  # UTF-8, JSON escapes, and text given twice (content, structured)
    transport = _CappedTransport(httpx2.AsyncHTTPTransport(), cap)
    timeout = httpx2.Timeout(30.0, read=max(300.0, spec.timeout_s))
    async with (
        httpx2.AsyncClient(headers=spec.headers, timeout=timeout, transport=transport) as client,
        streamable_http_client(spec.url or "", http_client=client, max_sse_event_size=cap) as streams,
    ):
        yield streams


class _TooLarge(httpx2.StreamError):
    """Raised while a response is read: the SDK answers the call with it instead of holding the whole body."""


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, cap: int) -> None:
        self._inner, self._cap = inner, cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._cap:
                raise _TooLarge(f"the response is over {self._cap} bytes: cut off")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _CappedTransport(httpx2.AsyncBaseTransport):
    """JSON responses (one whole reply each) bounded in bytes as they arrive; SSE events are bounded by the SDK."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, cap: int) -> None:
        self._inner, self._cap = inner, cap

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        # A sync stream is never one here, and httpx2 reads none asynchronously (a RuntimeError): nothing to cap.
        json_body = response.headers.get("content-type", "").lower().startswith("application/json")
        if json_body and isinstance(response.stream, httpx2.AsyncByteStream):
            response.stream = _Capped(response.stream, self._cap)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _list_tools(client: Client, server: str) -> list[ListedTool]:
    """Every tool the server lists (page by page, bounded), with its description and input schema."""
    listed: list[ListedTool] = []
    cursor = None
    for _ in range(MAX_LISTING_PAGES):
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            schema = tool.input_schema if isinstance(tool.input_schema, dict) else {"type": "object"}
            if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
                continue  # a schema that size is no tool a model can call
            hints = tool.annotations
            destructive = bool(hints and hints.destructive_hint and not hints.read_only_hint)
            listed.append(ListedTool(server, tool.name, tool.description or "", schema, destructive))
        cursor = page.next_cursor
        if cursor is None or len(listed) >= MAX_TOOLS_PER_SERVER:
            break
    return listed[:MAX_TOOLS_PER_SERVER]


def result_text(result: CallToolResult, max_chars: int) -> str:
    """A tool result as text, within `max_chars`; its own error, or output over the limit, is `CallFailed`."""
    parts: list[str] = []
    size = 0
    for block in result.content:
        part = _block_text(block)
        size += len(part)
        if size > max_chars:
            raise CallFailed(f"the output is over {max_chars} characters: cut off")
        parts.append(part)
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
        if len(parts[0]) > max_chars:
            raise CallFailed(f"the output is over {max_chars} characters: cut off")
    text = "\n".join(parts)
    if result.is_error:
        raise CallFailed(f"the tool reported an error: {one_line(text) or 'no detail'}")
    return text


def _block_text(block: ContentBlock) -> str:
    if isinstance(block, TextContent):
        return str(block.text)
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        text = getattr(resource, "text", None)
        kind = resource.mime_type or "binary"
        return str(text) if text is not None else f"[{kind} resource {resource.uri}: not text]"
    if isinstance(block, ResourceLink):
        return f"[link: {block.uri}]"
    return f"[{block.type} content: not text]"


def one_line(error: BaseException | str, max_chars: int = 300) -> str:
    """An error as one short line; for an exception group, its first leaf."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    if not isinstance(error, str) and hasattr(error, "message") and isinstance(error.message, str):
        text = error.message or text
    return " ".join(text.split())[:max_chars]
