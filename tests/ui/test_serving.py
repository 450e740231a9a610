"""The app as a server, without a login, attacked over loopback: clients that hang up or stop reading never freeze
the model, one client never holds every answer slot, MCP sessions are capped and closed when idle, only this app's
host names are answered (DNS rebinding), /v1 takes JSON only, and a client's temperature builds nothing.

The app runs in this process (`tests.support.ui_app.running_app`) with /v1 and /mcp beside it, the real store and
embeddings, and the scripted model; "the local model" is a `gguf:` file in the models folder, which the app
treats as in-process (one answer at a time, under its lock) while the scripted model answers for it. A question
that says "slowly" gets a 600-word answer at two words a second: five minutes, far beyond any bound here.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from gradio_client import Client
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.support.ui_app import RunningApp, running_app, write_docs

pytestmark = pytest.mark.slow
STALL_S = 2.0  # KBAGENT_ANSWER_STALL_S here
BOUND_S = 25.0  # an answer after a hang-up arrives within this (the hung-up one alone would take 300 s)
IDLE_S = 3.0  # KBAGENT_MCP_IDLE_S here
QUESTION = "What do the cardamom buns cost?"
SLOW = "Tell me slowly about the ferry."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("serving")
    settings = Settings(
        data_dir=tmp / "data",
        collection=f"t{uuid.uuid4().hex[:12]}",
        allowed_hosts="kb.example",
        answer_stall_s=STALL_S,
        mcp_max_sessions=3,
        mcp_idle_s=IDLE_S,
        _env_file=None,
    )
    with running_app(settings, embedder, docs=[write_docs(tmp / "docs")], ways_in=True) as running:
        models = running.settings.store.models_path
        models.mkdir(parents=True, exist_ok=True)
        (models / "ok.gguf").write_bytes(b"GGUF")
        yield running


def _local(app: RunningApp) -> str:
    return f"gguf:{app.settings.store.models_path}/ok.gguf"


def _client(app: RunningApp, timeout: float = BOUND_S) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="none", max_retries=0, timeout=timeout)


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _no_answer_running(timeout_s: float = 10.0) -> None:
    """Every answer's worker has ended (their slots, model turns and temporary threads given back)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name == "kbagent-answer"]:
            return
        time.sleep(0.1)
    raise AssertionError("an answer is still running")


def _hang_up_after_first_words(app: RunningApp, model: str) -> None:
    """A streamed answer read to its first words, then the connection closed."""
    body = {"model": model, "stream": True, "messages": _user(SLOW)}
    with httpx.stream("POST", f"{app.url}/v1/chat/completions", json=body, timeout=BOUND_S) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content": "The"' in line:
                break


async def _mcp_ask(url: str, question: str, model: str) -> tuple[bool, str]:
    """(whether the call failed, its text)."""
    async with McpClient(streamable_http_client(f"{url}/mcp")) as client:
        result = await client.call_tool("ask", {"question": question, "model": model})
        return result.is_error, "\n".join(b.text for b in result.content if getattr(b, "type", "") == "text")


# ---- hang-ups and slow readers -----------------------------------------------------------------------------


def test_a_client_that_hangs_up_a_stream_frees_the_local_model_for_every_way_in(app: RunningApp) -> None:
    local = _local(app)
    threads_before = app.parts.threads.list(1000)
    _hang_up_after_first_words(app, local)
    started = time.monotonic()
    client = _client(app)
    reply = client.chat.completions.create(model=local, messages=_user(QUESTION))
    assert "3.50" in (reply.choices[0].message.content or "")
    streamed = client.chat.completions.create(model=local, messages=_user(QUESTION), stream=True)
    assert "3.50" in "".join(c.choices[0].delta.content or "" for c in streamed)
    failed, text = asyncio.run(_mcp_ask(app.url, QUESTION, local))
    assert not failed and "3.50" in text, text
    assert app.parts.threads.list(1000) == threads_before  # the hung-up answer's thread went with it
    chat = Client(app.url, verbose=False).predict(QUESTION, "", local, api_name="/ask")  # the app's chat API
    assert "3.50" in chat["answer"]
    assert time.monotonic() - started < 2 * BOUND_S
    _no_answer_running()


def test_a_client_that_stops_reading_loses_its_answer_after_the_stall_time(app: RunningApp) -> None:
    """A very long answer on the local model to a client that reads its first bytes and then nothing (its socket
    buffer small and full): the next answer comes once the stall time has passed, not after the long one."""
    local = _local(app)
    body = json.dumps({"model": local, "stream": True, "messages": _user("Tell me at length about the ferry.")})
    host, port = app.url.removeprefix("http://").split(":")
    with socket.socket() as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect((host, int(port)))
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        reader.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode())
        assert b"200 OK" in reader.recv(2048)
        time.sleep(1)  # the answer streams into the buffers until they are full
        started = time.monotonic()
        reply = _client(app).chat.completions.create(model=local, messages=_user(QUESTION))
        assert "3.50" in (reply.choices[0].message.content or "")
        assert time.monotonic() - started < STALL_S + BOUND_S
    _no_answer_running()


def test_one_client_cannot_hold_every_answer_slot(app: RunningApp) -> None:
    """Four slow answers for one address (KBAGENT_ANSWERS_PER_CLIENT's default): a fifth is refused at once, on
    /v1 and MCP alike, and taken again once they are gone."""
    body = {"model": "openai:scripted", "stream": True, "messages": _user(SLOW)}
    with httpx.Client(timeout=BOUND_S) as http:
        streams = [http.stream("POST", f"{app.url}/v1/chat/completions", json=body) for _ in range(4)]
        opened = [s.__enter__() for s in streams]
        try:
            for response in opened:
                next(line for line in response.iter_lines() if '"content": "The"' in line)
            refused = httpx.post(f"{app.url}/v1/chat/completions", json={**body, "stream": False}, timeout=BOUND_S)
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
            failed, text = asyncio.run(_mcp_ask(app.url, QUESTION, "openai:scripted"))
            assert failed and "already running" in text, text
        finally:
            for stream in streams:
                stream.__exit__(None, None, None)
    _no_answer_running()
    reply = _client(app).chat.completions.create(model="openai:scripted", messages=_user(QUESTION))
    assert "3.50" in (reply.choices[0].message.content or "")


def test_mcp_sessions_are_capped_in_number_and_closed_when_idle(app: RunningApp) -> None:
    url = f"{app.url}/mcp"
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
    time.sleep(IDLE_S + 1)  # sessions other tests left open have gone idle
    opened = []
    for _ in range(3):
        response = httpx.post(url, json=initialize, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        opened.append(response.headers["mcp-session-id"])
    assert httpx.post(url, json=initialize, headers=headers, timeout=10).status_code == 503  # KBAGENT_MCP_MAX_SESSIONS
    time.sleep(IDLE_S + 1)
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    gone = httpx.post(url, json=ping, headers={**headers, "mcp-session-id": opened[0]}, timeout=10)
    assert gone.status_code == 404  # closed when idle
    assert httpx.post(url, json=initialize, headers=headers, timeout=10).status_code == 200


# ---- who may ask -------------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/"),
    ("GET", "/config"),
    ("GET", "/gradio_api/info"),
    ("POST", "/gradio_api/queue/join"),
    ("POST", "/gradio_api/upload"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/mcp"),
]


def test_without_a_login_only_this_apps_host_names_are_answered_on_every_route(app: RunningApp) -> None:
    """A page elsewhere that points its own name at this machine (DNS rebinding) gets nothing, on Gradio's routes,
    /v1 and /mcp alike; localhost, the bound address and KBAGENT_ALLOWED_HOSTS are answered."""
    calls = len(app.model.calls)
    question = {"model": "kbagent", "messages": _user(QUESTION)}
    for method, path in ROUTES:
        for name in ("attacker.example", "attacker.example:80", "127.0.0.1.attacker.example", ""):
            response = httpx.request(method, app.url + path, json=question, headers={"Host": name}, timeout=10)
            assert response.status_code == 421, (method, path, name, response.status_code)
    assert len(app.model.calls) == calls  # no answer ran
    port = app.url.rpartition(":")[2]
    for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "kb.example", f"KB.example.:{port}"):
        response = httpx.get(f"{app.url}/v1/models", headers={"Host": name}, timeout=10)
        assert response.status_code == 200, (name, response.status_code)
        assert httpx.get(f"{app.url}/config", headers={"Host": name}, timeout=10).status_code == 200


def test_v1_posts_must_be_json(app: RunningApp) -> None:
    """A page on any site may post text or a form to this machine without asking first, never JSON."""
    url = f"{app.url}/v1/chat/completions"
    body = json.dumps({"model": "openai:scripted", "messages": _user(QUESTION)})
    calls = len(app.model.calls)
    for media in (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        headers = {"Content-Type": media} if media else {}
        response = httpx.post(url, content=body, headers=headers, timeout=10)
        assert response.status_code == 415, (media, response.status_code)
        assert response.json()["error"]["code"] == "unsupported_media_type"
    assert len(app.model.calls) == calls
    ok = httpx.post(url, content=body, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=BOUND_S)
    assert ok.status_code == 200 and "3.50" in ok.json()["choices"][0]["message"]["content"]


# ---- a client's temperature --------------------------------------------------------------------------------


def test_a_clients_temperature_goes_with_its_calls_and_builds_no_agent(
    app: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(app)
    client.chat.completions.create(model="openai:scripted", messages=_user(QUESTION))  # the agent, built once
    built: list[Any] = []
    agent = app.parts.agent
    monkeypatch.setattr(app.parts, "agent", lambda *a, **k: built.append((a, k)) or agent(*a, **k))
    calls = len(app.model.calls)
    for temperature in (0.1, 0.7, 1.3):
        reply = client.chat.completions.create(
            model="openai:scripted", messages=_user(QUESTION), temperature=temperature
        )
        assert "3.50" in (reply.choices[0].message.content or "")
    assert built == []
    sent = [c.get("temperature") for c in app.model.calls[calls:]]
    assert sent.count(0.1) == sent.count(0.7) == sent.count(1.3) == 2  # the tool call and the answer, each
