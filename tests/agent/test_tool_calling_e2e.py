"""The tool-calling path (LangChain's `create_agent`) with a real model: the embedded Qwen2.5-Coder-1.5B behind
llama.cpp's OpenAI-compatible server with kbagent's tool-call handler (`python -m agent.llama_server`), over a
small real knowledge base. The model calls search_knowledge_base, reads the result, and answers from it; the
model writes no [n] itself, so the citation is the one the agent attaches to the sentence the passage backs.

The 1.5B coder model does not call a tool on its own under the agent's prompt (it answers "couldn't find"
at once), and the 0.5B one calls the calculator with a sentence for an expression; so the server runs with
`--tool-first`: a new question's first step is a call, which the model writes (tool and arguments) under the
tools' grammar. Everything after that (reading the result, answering, citing) is the model's own.

The server runs as `kbagent serve-model --api-key` would: the agent sends the key, and no web page may call it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.events import Done, Sources, Token, ToolEnd, ToolStart
from kbagent.components import Components
from kbagent.settings import Settings
from tests.support import parts
from tests.support.paths import REPO
from tests.support.servers import free_port, wait_for_server

pytestmark = [pytest.mark.slow, parts.llama_cpp()]

QUESTION = "What colour is the lighthouse keeper's boat at Skerry Point?"
API_KEY = "kb-test-key"
DOCS = {
    "boats.md": "# Boats of Skerry Point\n\nThe lighthouse keeper's boat at Skerry Point is painted ochre yellow "
    "and is called the Marram. The harbour master's launch is dark blue.\n",
    "keepers.md": "# Keepers\n\nThe Skerry Point lighthouse has had three keepers since 1921. The current "
    "keeper, Ina Rask, took over in 2019 and keeps bees behind the lamp room.\n",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from agent.embedded_model import ensure_model_file

    models = tmp_path_factory.mktemp("models")
    path = ensure_model_file(models)
    port = free_port()
    log_path = models / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: a full pipe would block the server
    command = [sys.executable, "-m", "agent.llama_server", str(path), "--port", str(port), "--alias", "qwen-local"]
    proc = subprocess.Popen(
        [*command, "--tool-first", "--threads", str(os.cpu_count() or 2), "--api-key", API_KEY],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    url = f"http://127.0.0.1:{port}/v1"
    wait_for_server(f"{url}/models", proc, log_path, "the server", up=lambda status: status == 401)  # its key
    yield url, models
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def answer(server: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory, embedder) -> list:  # type: ignore[no-untyped-def,type-arg]
    """The agent's events for one question, asked once for the tests below."""
    url, models = server
    folder = tmp_path_factory.mktemp("kb")
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_dir=models,
        model="openai:qwen-local",
        openai_base_url=url,
        openai_api_key=API_KEY,
        tool_calling="on",
        temperature=0,
        _env_file=None,
    )
    with Components(settings, embedder=embedder) as kb_parts:
        kb_parts.ingest([folder])
        agent = kb_parts.agent()
        assert agent.tool_calling
        start = time.perf_counter()
        events = list(agent.stream(QUESTION))
        print(f"\ntool-calling answer in {time.perf_counter() - start:.1f} s: {events[-1]!r}")
    return events


def test_the_model_server_wants_its_key_and_no_web_page_may_call_it(server: tuple[str, Path]) -> None:
    url, _ = server
    keyed = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.get(f"{url}/models", timeout=10).status_code == 401
    assert httpx.get(f"{url}/models", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert httpx.get(f"{url}/models", headers=keyed, timeout=10).status_code == 200
    page = {"Origin": "http://attacker.example"}
    ask_first = {**page, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    preflight = httpx.options(f"{url}/chat/completions", headers=ask_first, timeout=10)
    simple = httpx.get(f"{url}/models", headers={**page, **keyed}, timeout=10)
    for response in (preflight, simple):
        assert "access-control-allow-origin" not in response.headers, response.headers


def test_the_model_calls_the_search_tool_and_answers_from_its_result(answer: list) -> None:  # type: ignore[type-arg]
    done = answer[-1]
    assert isinstance(done, Done), answer[-3:]
    starts = [e for e in answer if isinstance(e, ToolStart)]
    ends = [e for e in answer if isinstance(e, ToolEnd)]
    assert starts and starts[0].name == "search_knowledge_base", starts
    assert "skerry" in str(starts[0].args.get("query", "")).lower(), starts[0].args  # the model wrote the query
    assert ends and ends[0].call_id == starts[0].call_id and ends[0].ok and "ochre" in ends[0].output, ends
    assert "ochre" in done.answer.lower()  # the tool result reached the model
    assert sum(isinstance(e, Token) for e in answer) > 3  # streamed


def test_the_answer_cites_the_passage_that_states_the_fact(answer: list) -> None:  # type: ignore[type-arg]
    done = answer[-1]
    sources = next(e for e in answer if isinstance(e, Sources))
    assert sources.cited, done.answer
    assert all(f"[{p.n}]" in done.answer for p in sources.cited)
    assert any("ochre" in p.text for p in sources.cited)
