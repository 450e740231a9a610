"""The MCP server through the `mcp` package's own client: `kbagent mcp` on stdio, and the app's /mcp endpoint on
streamable HTTP behind its login. Answers come from an OpenAI-compatible stand-in (the property is the protocol);
search runs on the real store and embedding model."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR

from ingest import IngestConfig, build_ingestor
from kbagent.components import Components, open_knowledge_base
from kbagent.knowledge_bases import KnowledgeBases
from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.support.addresses import check_address
from tests.support.files import write_pptx
from tests.support.openai_stand_in import ANSWER, openai_stand_in
from tests.support.paths import REPO, SAMPLES
from tests.support.servers import free_port, stop_server, wait_for_server
from tests.support.web_site import Site, web_site  # noqa: F401

pytestmark = pytest.mark.slow
QUESTION = "What does a Family membership cost?"
PUBLIC_URL = "https://kb.example.org"


ROWING = "# Riverside Rowing Club\n\nAt the Riverside Rowing Club a Family membership costs $70 per year.\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A store holding the membership page, as `kbagent ingest` would make it; and a second knowledge base,
    `Rowing`, whose one document backs the same answer (so each knowledge base can cite it), as `kbagent kb create`
    and `kbagent ingest --kb` would make it."""
    root = tmp_path_factory.mktemp("mcp")
    data = root / "data"
    with open_knowledge_base(Settings(data_dir=data, _env_file=None), embedder) as kb:
        build_ingestor(IngestConfig(), kb).run([SAMPLES / "policies" / "membership.md"])
    (root / "rowing.md").write_text(ROWING, encoding="utf-8")
    with Components(Settings(data_dir=data, _env_file=None), embedder=embedder) as parts:
        KnowledgeBases(parts).create("Rowing", "The rowing club's papers")
        parts.ingest([root / "rowing.md"], kb="Rowing")
    return data


@pytest.fixture(scope="module")
def server_env(data_dir: Path) -> Iterator[dict[str, str]]:
    with openai_stand_in() as (url, _requests):
        yield {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "KBAGENT_DATA_DIR": str(data_dir),
            "KBAGENT_MODEL": "openai:gpt-4o-mini",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": url,
            "KBAGENT_PUBLIC_URL": PUBLIC_URL,  # addresses in answers over HTTP; none on stdio
        }


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def check_read_tools(client: Client, data: Path, addressed: bool) -> None:
    """search_knowledge_base, ask and list_sources answer; bad calls come back as errors, not crashes. `ask`'s
    data says where its cited passage lies, with its address in the app when `addressed` (which then opens that
    passage in `data`'s knowledge base), else none."""
    found = await client.call_tool("search_knowledge_base", {"query": "Family membership price", "k": 2})
    assert not found.is_error
    assert "[1] Membership" in text_of(found) and "membership.md" in text_of(found) and "$70" in text_of(found)
    asked = await client.call_tool("ask", {"question": QUESTION})
    assert not asked.is_error, text_of(asked)
    answer, sources = text_of(asked).split("\n\nSources:\n")
    assert answer == ANSWER and sources.startswith("[1] Membership") and "membership.md" in sources
    assert asked.structured_content is not None and asked.structured_content["result"] == text_of(asked)
    [cited] = asked.structured_content["sources"]
    assert cited["n"] == 1 and cited["source"].endswith("membership.md") and "location" in cited
    assert re.fullmatch("[0-9a-f]{16}", cited["source_id"]) and cited["chunk_id"]
    if addressed:
        view = check_address(cited["address"], PUBLIC_URL, data, cited)
        assert "$70" in view.passage and sources.endswith(f" <{cited['address']}>")
    else:
        assert cited["address"] is None and "/source/" not in text_of(asked)
    listed = await client.call_tool("list_sources", {})
    names = {Path(s["source"]).name for s in listed.structured_content["result"]}
    assert not listed.is_error and "membership.md" in names

    for name, args, says in [
        ("no_such_tool", {}, "no_such_tool"),
        ("search_knowledge_base", {"query": "x", "k": 0}, "k"),
        ("search_knowledge_base", {"k": 3}, "query"),
        ("ask", {"question": "x" * 5000}, "question"),
        ("ask", {"question": QUESTION, "model": "gguf:/etc/passwd"}, "models folder"),
    ]:
        try:
            result = await client.call_tool(name, args)
        except Exception as exc:  # a protocol-level error (the SDK raises for an unknown tool on some versions)
            assert says in str(exc), (name, args, exc)
            continue
        assert result.is_error and says in text_of(result), (name, args, text_of(result))


async def test_stdio_server_lists_and_calls_every_tool(
    server_env: dict[str, str],
    data_dir: Path,
    web_site: Site,  # noqa: F811
) -> None:
    env = {**server_env, "KBAGENT_MCP_WRITES": "on", "KBAGENT_ALLOW_HOSTS": web_site.allow}
    params = StdioServerParameters(command=sys.executable, args=["-m", "kbagent.cli", "mcp"], env=env, cwd=str(REPO))
    async with Client(params, read_timeout_seconds=240) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {"search_knowledge_base", "ask", "list_sources", "list_knowledge_bases", "ingest_url"}
        assert tools["search_knowledge_base"].input_schema["properties"]["k"]["maximum"] == 20
        await check_read_tools(client, data_dir, addressed=False)  # stdio: no app beside it, no address

        refused = await client.call_tool("ingest_url", {"url": "http://169.254.169.254/latest/meta-data/"})
        assert refused.is_error and "refused" in text_of(refused).lower()
        not_web = await client.call_tool("ingest_url", {"url": "file:///etc/passwd"})
        assert not_web.is_error and "http" in text_of(not_web)
        page = web_site.url + "/article"
        added = await client.call_tool("ingest_url", {"url": page})
        assert not added.is_error and text_of(added).startswith(f"ingested {page}: 1 added"), text_of(added)
        listed = await client.call_tool("list_sources", {})
        web = [s["source"] for s in listed.structured_content["result"] if s["source"].startswith(web_site.url)]
        assert len(web) == 1  # the page, under the address it redirects to


@pytest.fixture(scope="module")
def app_with_mcp(server_env: dict[str, str], data_dir: Path) -> Iterator[str]:
    """`kbagent serve` with KBAGENT_MCP=on and a login, on 127.0.0.1."""
    port = free_port()
    env = {**server_env, "KBAGENT_MCP": "on", "KBAGENT_AUTH": "ada:pw", "KBAGENT_PORT": str(port)}
    log_path = data_dir.parent / "app.log"
    with open(log_path, "wb") as log:
        command = [sys.executable, "-m", "kbagent.cli", "serve"]
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    # Up, and its /mcp routed: a 401 (the login) counts, a 404 (Gradio alone) does not.
    wait_for_server(f"{url}/mcp", proc, log_path, "kbagent serve", up=lambda status: status != 404)
    yield url
    stop_server(proc, 15)


# How the `mcp` client reports a 401 whose body is not a JSON-RPC error: its transport answers the request with
# INTERNAL_ERROR "Server returned an error response" (no HTTP status reaches the caller), raised out of anyio's task
# groups, so inside exception groups.
REFUSED = pytest.RaisesExc(MCPError, check=lambda e: e.code == INTERNAL_ERROR)


def _http_client(user_password: str | None) -> Any:
    import httpx2

    headers = {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()} if user_password else {}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=240))


async def test_app_serves_mcp_over_http_behind_its_login(app_with_mcp: str, data_dir: Path) -> None:
    url = app_with_mcp + "/mcp"
    async with Client(streamable_http_client(url, http_client=_http_client("ada:pw"))) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        # no ingest_url: writes are off by default
        assert tools == {"search_knowledge_base", "ask", "list_sources", "list_knowledge_bases"}
        await check_read_tools(client, data_dir, addressed=True)

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    for auth in (None, ("ada", "wrong")):
        response = httpx.post(url, json=initialize, auth=auth, headers={"Accept": "application/json"})
        assert response.status_code == 401 and json.loads(response.text)["error"]["code"] == "invalid_api_key"
    with pytest.RaisesGroup(REFUSED, flatten_subgroups=True):
        async with Client(streamable_http_client(url, http_client=_http_client("ada:nope"))) as client:
            await client.list_tools()


async def test_each_tool_reads_only_the_knowledge_base_it_names(app_with_mcp: str) -> None:
    """Two knowledge bases, both able to answer: `kb` picks one per call (any case), and searches, answers with
    their citations, and source lists come from it alone; without `kb`, from the default one. An unknown name is
    one line of error from every tool that takes one."""
    async with Client(streamable_http_client(app_with_mcp + "/mcp", http_client=_http_client("ada:pw"))) as client:
        listed = await client.call_tool("list_knowledge_bases", {})
        assert not listed.is_error, text_of(listed)
        kbs = {kb["name"]: kb for kb in listed.structured_content["result"]}
        assert set(kbs) == {"kbagent", "Rowing"}
        assert kbs["Rowing"]["description"] == "The rowing club's papers" and kbs["Rowing"]["sources"] == 1
        assert kbs["Rowing"]["chunks"] >= 1 and kbs["kbagent"]["sources"] >= 1
        assert kbs["kbagent"]["default"] is True and kbs["Rowing"]["default"] is False

        for kb, own, other in [("rowing", "rowing.md", "membership.md"), (None, "membership.md", "rowing.md")]:
            picked = {"kb": kb} if kb else {}
            found = await client.call_tool("search_knowledge_base", {"query": "Family membership price", **picked})
            assert not found.is_error and own in text_of(found) and other not in text_of(found), text_of(found)
            asked = await client.call_tool("ask", {"question": QUESTION, **picked})
            assert not asked.is_error, text_of(asked)
            answer, sources = text_of(asked).split("\n\nSources:\n")
            assert answer == ANSWER and sources.startswith("[1] ") and own in sources and other not in sources
            sourced = await client.call_tool("list_sources", picked)
            names = {Path(s["source"]).name for s in sourced.structured_content["result"]}
            assert own in names and other not in names

        unknown = "no knowledge base named 'nope' (list_knowledge_bases names them)"
        for name, args in [
            ("search_knowledge_base", {"query": "Family membership price"}),
            ("ask", {"question": QUESTION}),
            ("list_sources", {}),
        ]:
            refused = await client.call_tool(name, {**args, "kb": "nope"})
            said = text_of(refused)  # the SDK puts "Error executing tool NAME: " before it
            assert refused.is_error and said.endswith(": " + unknown) and "\n" not in said, (name, said)


def test_mcp_is_off_unless_asked_for() -> None:
    from app import ways_in

    ways = ways_in(None, Settings(_env_file=None), "http://127.0.0.1:7860")  # type: ignore[arg-type]
    assert [w.path for w in ways] == ["/source/{kb}/{source_id}"]  # the citation viewer only: no /mcp


async def test_an_answer_names_the_slide_it_cites(
    tmp_path: Path, server_env: dict[str, str], embedder: Embedder
) -> None:
    """An MCP client reads where in a file a cited passage lies, as the app shows it: a slide, not only a page."""
    deck = [
        {"title": "Harbour Review", "bullets": ["Prepared by the harbour office"]},
        {"title": "Membership", "bullets": ["A Family membership costs $70 per year", "Single riders pay $40"]},
    ]
    data = tmp_path / "data"
    with open_knowledge_base(Settings(data_dir=data, _env_file=None), embedder) as kb:
        build_ingestor(IngestConfig(), kb).run([write_pptx(tmp_path / "deck.pptx", deck, title="Harbour Review")])
    env = {**server_env, "KBAGENT_DATA_DIR": str(data)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "kbagent.cli", "mcp"], env=env, cwd=str(REPO))
    async with Client(params, read_timeout_seconds=240) as client:
        asked = await client.call_tool("ask", {"question": QUESTION})
    assert not asked.is_error, text_of(asked)
    answer, sources = text_of(asked).split("\n\nSources:\n")
    assert answer == ANSWER
    assert sources == f"[1] Harbour Review — {tmp_path / 'deck.pptx'} (slide 2)", sources
