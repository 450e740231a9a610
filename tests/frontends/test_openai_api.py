"""The OpenAI-compatible API (`kbagent serve --openai`) through the `openai` package itself: models, answers
streamed and not, a conversation the client keeps, and bad requests as OpenAI error objects. The app runs for
real on 127.0.0.1 with a login; its chat model is an OpenAI-compatible stand-in (the property is the protocol)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agent.memory import ThreadStore
from ingest import IngestConfig, build_ingestor
from kbagent.components import Components, open_knowledge_base
from kbagent.knowledge_bases import KnowledgeBases
from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.support import parts
from tests.support.addresses import check_address
from tests.support.openai_stand_in import ANSWER, Recorded, openai_stand_in
from tests.support.paths import REPO, SAMPLES
from tests.support.servers import free_port, stop_server, wait_for_server

pytestmark = pytest.mark.slow
QUESTION = "What does a Family membership cost?"
DATA: list[Path] = []  # the served store's folder
ROWING = "# Riverside Rowing Club\n\nAt the Riverside Rowing Club a Family membership costs $70 per year.\n"
HANG_UP_BOUND_S = 150  # one answer of the embedded model takes 20 to 60 s on two shared cores
PUBLIC_URL = "https://kb.example.org/harbour/"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[str, list[Recorded]]]:
    """`kbagent serve --openai` with a login over a store holding the membership page, and a second knowledge base,
    `Rowing`, whose one document backs the same answer and which answers on a model of its own; its base URL for
    clients and the requests its chat model (the stand-in) received."""
    root = tmp_path_factory.mktemp("openai-api")
    DATA[:] = [root / "data"]
    with _serve(root, embedder) as (url, requests):
        yield url, requests


@pytest.fixture(scope="module")
def served_public(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[tuple[str, Path]]:
    """The same with KBAGENT_PUBLIC_URL set: its base URL, and its data dir."""
    root = tmp_path_factory.mktemp("openai-api-public")
    with _serve(root, embedder, {"KBAGENT_PUBLIC_URL": PUBLIC_URL}) as (url, _):
        yield url, root / "data"


@contextlib.contextmanager
def _serve(root: Path, embedder: Embedder, more: dict[str, str] | None = None) -> Iterator[tuple[str, list[Recorded]]]:
    data = root / "data"
    with open_knowledge_base(Settings(data_dir=data, _env_file=None), embedder) as kb:
        build_ingestor(IngestConfig(), kb).run([SAMPLES / "policies" / "membership.md"])
    (root / "rowing.md").write_text(ROWING, encoding="utf-8")
    with Components(Settings(data_dir=data, _env_file=None), embedder=embedder) as parts:
        admin = KnowledgeBases(parts)
        admin.create("Rowing", "The rowing club's papers")
        admin.set("Rowing", "model", "openai:gpt-4o")
        parts.ingest([root / "rowing.md"], kb="Rowing")
    port = free_port()
    with openai_stand_in() as (model_url, requests):
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "KBAGENT_DATA_DIR": str(data),
            "KBAGENT_MODEL": "openai:gpt-4o-mini",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": model_url,
            "KBAGENT_AUTH": "ada:pw",
            "KBAGENT_PORT": str(port),
            "KBAGENT_PUBLIC_URL": "",
            **(more or {}),
        }
        log_path = root / "app.log"
        with open(log_path, "wb") as log:
            command = [sys.executable, "-m", "kbagent.cli", "serve", "--openai"]
            proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}/v1"
        # Up, and the API routed: a 401 (the login) counts, a 404 (Gradio alone) does not.
        wait_for_server(f"{url}/models", proc, log_path, "kbagent serve", up=lambda status: status != 404)
        yield url, requests
        stop_server(proc, 15)


@pytest.fixture(scope="module")
def client(served: tuple[str, list[Recorded]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0], api_key="ada:pw", max_retries=0, timeout=240)


def test_models_lists_kbagent_and_the_models_that_run_here(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "kbagent" and "openai:gpt-4o-mini" in ids  # the configured model
    assert not any("<" in i for i in ids)


def test_each_knowledge_base_is_a_model_answering_only_from_it(
    client: openai.OpenAI, served: tuple[str, list[Recorded]]
) -> None:
    """`kbagent/NAME` (any case) answers from that knowledge base alone, on its own model; `kbagent/NAME:MODEL`
    on another; `kbagent` and a model alone from the default one. The stand-in answers alike each time: the
    citations and passages show where each answer came from, and the requests it got which model asked."""
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "kbagent" and {"kbagent/kbagent", "kbagent/Rowing"} <= set(ids)
    _, requests = served
    user = [{"role": "user", "content": QUESTION}]
    for model, own, other, answered_on in [
        ("kbagent/Rowing", "rowing.md", "membership.md", "openai:gpt-4o"),
        ("kbagent/rowing:openai:gpt-4o-mini", "rowing.md", "membership.md", "openai:gpt-4o-mini"),
        ("kbagent", "membership.md", "rowing.md", "openai:gpt-4o-mini"),
        ("kbagent/kbagent", "membership.md", "rowing.md", "openai:gpt-4o-mini"),
        ("openai:gpt-4o", "membership.md", "rowing.md", "openai:gpt-4o"),
    ]:
        before = len(requests)
        reply = client.chat.completions.create(model=model, messages=user)  # type: ignore[arg-type]
        text = reply.choices[0].message.content or ""
        answer, sources = text.split("\n\nSources:\n")
        assert answer == ANSWER and sources.endswith(own), (model, text)
        extra = (reply.model_extra or {})["kbagent"]
        passages = [p["source"] for p in [*extra["sources"], *extra["retrieved"]]]
        assert passages and all(p.endswith(own) for p in passages), (model, passages)
        assert extra["model"] == answered_on and reply.model == model
        assert {r.body["model"] for r in requests[before:]} == {answered_on.partition(":")[2]}
        assert other not in str(requests[before:])

    ask = client.chat.completions.create
    for model in ("kbagent/nope", "kbagent/", "kbagent/nope:openai:gpt-4o-mini"):
        unknown = _error(lambda: ask(model=model, messages=user))  # type: ignore[arg-type]  # noqa: B023
        assert unknown.status_code == 404 and unknown.code == "model_not_found", model  # type: ignore[attr-defined]
        assert "no knowledge base named" in unknown.message and "\n" not in unknown.message, unknown.message
    unsafe = _error(lambda: ask(model="kbagent/Rowing:gguf:/etc/passwd", messages=user, stream=True))
    assert unsafe.status_code == 404 and "models folder" in unsafe.message  # the model policy holds per knowledge base


def test_a_completion_carries_its_citations_in_the_text_and_as_data(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="kbagent", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content or ""
    answer, sources = text.split("\n\nSources:\n")
    assert answer == ANSWER and sources.startswith("[1] Membership") and sources.endswith("membership.md")
    assert reply.choices[0].finish_reason == "stop" and reply.object == "chat.completion"
    extra = (reply.model_extra or {})["kbagent"]
    assert extra["answer"] == ANSWER and extra["model"] == "openai:gpt-4o-mini"
    [cited] = extra["sources"]
    assert cited["n"] == 1 and cited["source"].endswith("membership.md") and "$70" in cited["text"]
    # Where it lies, for `kbagent show`; without KBAGENT_PUBLIC_URL, no address (here or in the text).
    assert re.fullmatch("[0-9a-f]{16}", cited["source_id"]) and cited["chunk_id"] and "location" in cited
    assert cited["address"] is None and "/source/" not in text and "<" not in sources


def test_with_a_public_url_each_cited_passage_carries_its_address(served_public: tuple[str, Path]) -> None:
    """The address is in the data and on the source line, and opens the very passage cited."""
    url, data = served_public
    client = openai.OpenAI(base_url=url, api_key="ada:pw", max_retries=0, timeout=240)
    reply = client.chat.completions.create(model="kbagent", messages=[{"role": "user", "content": QUESTION}])
    [cited] = (reply.model_extra or {})["kbagent"]["sources"]
    check_address(cited["address"], PUBLIC_URL, data, cited)
    sources = (reply.choices[0].message.content or "").split("\n\nSources:\n")[1]
    assert sources.startswith("[1] Membership") and sources.endswith(f"membership.md <{cited['address']}>")

    stream = client.chat.completions.create(
        model="kbagent", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    [streamed] = (chunks[-1].model_extra or {})["kbagent"]["sources"]
    assert streamed["address"] == cited["address"] and text.endswith(f" <{cited['address']}>")


def test_a_streamed_answer_is_the_same_answer_with_data_on_its_last_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="openai:gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len([c for c in chunks if c.choices[0].delta.content]) > 3  # word by word, not one block
    assert text.startswith(ANSWER + "\n\nSources:\n[1] Membership") and text.endswith("membership.md")
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["kbagent"]["sources"][0]["source"].endswith("membership.md")


def test_the_conversation_the_client_keeps_reaches_the_model(
    client: openai.OpenAI, served: tuple[str, list[Recorded]]
) -> None:
    _, requests = served
    before = len(requests)
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Who runs the tool library?"},
        {"role": "assistant", "content": "The volunteers do."},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    reply = client.chat.completions.create(model="kbagent", messages=messages)
    assert (reply.choices[0].message.content or "").startswith(ANSWER)
    sent = [(m["role"], m.get("content")) for m in requests[before].body["messages"]]
    assert ("user", "Who runs the tool library?") in sent and ("assistant", "The volunteers do.") in sent
    assert sent[-1] == ("user", QUESTION) and "You are terse." not in str(sent)  # kbagent's own prompt only
    assert ThreadStore(DATA[0] / "threads.sqlite3").list() == []  # each answer's thread is gone with it


def _error(call: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


def test_bad_requests_get_openai_error_objects(client: openai.OpenAI, served: tuple[str, list[Recorded]]) -> None:
    ask = client.chat.completions.create
    user = [{"role": "user", "content": QUESTION}]
    unknown = _error(lambda: ask(model="no-such-model", messages=user))
    assert unknown.status_code == 404 and unknown.code == "model_not_found"  # type: ignore[attr-defined]
    streamed = _error(lambda: ask(model="gguf:/etc/passwd", messages=user, stream=True))
    assert streamed.status_code == 404
    empty = _error(lambda: ask(model="kbagent", messages=[]))
    assert empty.status_code == 400 and isinstance(empty, openai.BadRequestError) and empty.param == "messages"  # type: ignore[attr-defined]
    not_asked = _error(lambda: ask(model="kbagent", messages=[{"role": "assistant", "content": "Hi"}]))
    assert not_asked.status_code == 400 and "last message" in not_asked.message
    too_long = _error(lambda: ask(model="kbagent", messages=[{"role": "user", "content": "x" * 5000}]))
    assert too_long.status_code == 400 and too_long.code == "context_length_exceeded"  # type: ignore[attr-defined]
    huge = _error(lambda: ask(model="kbagent", messages=[{"role": "user", "content": "x" * 1_200_000}]))
    assert huge.status_code == 413 and huge.code == "request_too_large"  # type: ignore[attr-defined]
    bad_role = _error(lambda: ask(model="kbagent", messages=[{"role": "wizard", "content": "hi"}]))  # type: ignore[misc,list-item]
    assert bad_role.status_code == 400 and "role" in bad_role.message
    earlier = [{"role": "user", "content": "x" * 3000}, {"role": "assistant", "content": "y" * 3000}] * 6
    long_history = _error(lambda: ask(model="kbagent", messages=[*earlier, {"role": "user", "content": QUESTION}]))
    assert long_history.status_code == 400 and long_history.code == "context_length_exceeded"  # type: ignore[attr-defined]

    url, _ = served
    wrong_key = openai.OpenAI(base_url=url, api_key="ada:nope", max_retries=0)
    assert isinstance(_error(lambda: wrong_key.models.list()), openai.AuthenticationError)
    as_json = {"Content-Type": "application/json"}
    not_json = httpx.post(url + "/chat/completions", content=b"{oops", auth=("ada", "pw"), headers=as_json)
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"
    part = b'{"type": "text", "text": "hi", "more": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'[{"role": "user", "content": [' + part + b"]}]"):
        body = b'{"model": "kbagent", "messages": ' + deep + b"}"
        nested = httpx.post(url + "/chat/completions", content=body, auth=("ada", "pw"), headers=as_json)
        assert nested.status_code == 400 and nested.json()["error"]["type"] == "invalid_request_error"


def test_the_api_is_off_unless_asked_for() -> None:
    from app import ways_in

    ways = ways_in(None, Settings(_env_file=None), "http://127.0.0.1:7860")  # type: ignore[arg-type]
    assert [w.path for w in ways] == ["/source/{kb}/{source_id}"]  # the citation viewer only: no /v1


@parts.llama_cpp()
def test_the_embedded_model_answers_an_openai_client_end_to_end(
    tmp_path: Path, embedder: Embedder, served: tuple[str, list[Recorded]]
) -> None:
    """The real model this time (in-process GGUF), streamed to the real client: the price comes back, and every
    passage the answer cites is in the data on the last chunk. (Whether the small model cites is not asserted.)"""
    from agent.embedded_model import ensure_model_file

    ensure_model_file(Settings(_env_file=None).store.models_path)  # the GGUF, joined once for the run
    url, _ = served
    stream = openai.OpenAI(base_url=url, api_key="ada:pw", max_retries=0, timeout=600).chat.completions.create(
        model="embedded", messages=[{"role": "user", "content": QUESTION}], stream=True, temperature=0.05
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    extra = (chunks[-1].model_extra or {})["kbagent"]
    assert "70" in extra["answer"] and text.startswith(extra["answer"].strip()[:20]), text
    assert extra["model"] == "embedded"
    assert all(f"[{p['n']}]" in extra["answer"] for p in extra["sources"])
    assert any("$70" in p["text"] for p in [*extra["sources"], *extra["retrieved"]])


@parts.llama_cpp()
def test_a_client_that_hangs_up_on_the_embedded_model_leaves_it_free(served: tuple[str, list[Recorded]]) -> None:
    """The in-process model answers one question at a time: a client that reads the first words of a long answer
    and hangs up must not keep it. The next answer arrives in about the time one answer takes, and no thread of
    the hung-up answer is left."""
    from agent.embedded_model import ensure_model_file

    ensure_model_file(Settings(_env_file=None).store.models_path)
    url, _ = served
    long = "Write a long essay on every membership, every price and every rule, with examples for each."
    body = {"model": "embedded", "stream": True, "messages": [{"role": "user", "content": long}]}
    with httpx.stream("POST", f"{url}/chat/completions", json=body, auth=("ada", "pw"), timeout=600) as response:
        assert response.status_code == 200
        next(line for line in response.iter_lines() if '"content": "' in line and '"content": ""' not in line)
    started = time.monotonic()
    client = openai.OpenAI(base_url=url, api_key="ada:pw", max_retries=0, timeout=HANG_UP_BOUND_S)
    reply = client.chat.completions.create(model="embedded", messages=[{"role": "user", "content": QUESTION}])
    assert "70" in (reply.choices[0].message.content or ""), reply
    assert time.monotonic() - started < HANG_UP_BOUND_S
    assert ThreadStore(DATA[0] / "threads.sqlite3").list() == []


def _data(lines: list[str]) -> list[Any]:
    import json

    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_a_stream_sends_the_replacement_when_the_agent_replaces_the_answer_and_errors_as_error_objects() -> None:
    from agent.events import Done, Error, Sources, Token
    from kbagent.frontends.openai_api import _stream_chunks

    made_up = "The fee is $99 [1]."
    replaced = "I couldn't find that in the knowledge base."
    events = [Token(made_up), Sources([], []), Done(replaced, "t", "embedded", 1.0, retracted=made_up)]
    chunks = _data(list(_stream_chunks(iter(events), "c-1", "kbagent")))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == f"{made_up}\n\n{replaced}" and chunks[-1]["kbagent"]["answer"] == replaced

    failed = list(_stream_chunks(iter([Token("Half"), Error("APIError: the model went away")]), "c-2", "kbagent"))
    assert failed[-1] == "data: [DONE]\n\n"
    error = {"message": "APIError: the model went away", "type": "api_error", "param": None, "code": "answer_failed"}
    assert _data(failed)[-1] == {"error": error}
