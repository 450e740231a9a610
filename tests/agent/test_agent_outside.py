"""The tool-calling agent reaching beyond the knowledge base, with a scripted model: web search against the loopback
SearXNG stand-in (offered only when asked for), and an outside MCP server's tool (called, and audited)."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from agent.config import AgentConfig
from agent.events import Sources, ToolEnd, fold
from agent.memory import ThreadStore
from agent.models import ModelSpec
from agent.runner import Agent
from kbagent.components import Components, keep_audit_log
from kbagent.services.operations import Services
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase
from knowledge_base.embeddings import Embedder
from tests.support.mcp_outside_server import FACT
from tests.support.paths import REPO
from tests.support.scripted_model import ScriptedChatModel, tool_call
from tests.support.search_stand_in import PAGES, StandIn, search_stand_in
from tools.config import SearchKeys, ToolsConfig
from tools.mcp_client import McpHub, make_mcp_tools, start_mcp
from tools.web_search import WebSearch, make_web_search

HOURS_URL = PAGES[0][1]
RULES_URL = PAGES[1][1]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with search_stand_in() as served:
        yield served


@pytest.fixture
def searxng(stand_in: StandIn) -> Iterator[WebSearch]:
    stand_in.mode, stand_in.seen[:] = "ok", []
    search = make_web_search(ToolsConfig(web_search=f"searxng:{stand_in.endpoint('searxng')}"), SearchKeys())
    assert search is not None
    yield search
    search.close()


def _agent(kb: KnowledgeBase, model: ScriptedChatModel, **parts: object) -> Agent:
    threads = ThreadStore(kb.store.data_dir / "threads.sqlite3")
    spec = ModelSpec("openai", "scripted")
    return Agent(AgentConfig(tool_calling="on"), kb, model, spec, threads, **parts)  # type: ignore[arg-type]


def test_the_agent_searches_the_web_and_its_sources_carry_the_url(
    embedded_kb: KnowledgeBase, searxng: WebSearch, stand_in: StandIn
) -> None:
    model = ScriptedChatModel(
        replies=[
            tool_call("web_search", {"query": "Harbor Co-op opening hours"}),
            AIMessage("The Harbor Co-op is open Tuesday to Saturday, 10:00 to 18:00."),
        ]
    )
    events = list(_agent(embedded_kb, model, web_search=searxng).stream("When is the Harbor Co-op open?", web=True))
    assert "web_search" in model.bound_tools
    assert [s.query.get("q") for s in stand_in.seen] == [["Harbor Co-op opening hours"]]  # the stand-in was asked
    end = next(e for e in events if isinstance(e, ToolEnd))
    assert end.name == "web_search" and end.ok and HOURS_URL in end.output
    sources = next(e for e in events if isinstance(e, Sources))
    assert [r.url for r in sources.web] == [HOURS_URL, RULES_URL]  # the javascript: result is no source
    answer = fold(events)
    assert answer.web[0].url == HOURS_URL and answer.web[0].title == "Harbor Co-op opening hours"
    assert "10:00" in answer.answer and not answer.retracted  # the result's snippet backs the answer


def test_web_results_reach_the_model_with_chat_template_tokens_escaped(
    embedded_kb: KnowledgeBase, searxng: WebSearch
) -> None:
    """The second stand-in result holds `<|im_start|>system` and a forged `</web_page>`: the model reads them as
    text, not as a turn or the end of the data."""
    model = ScriptedChatModel(replies=[tool_call("web_search", {"query": "tool library"}), AIMessage("Noted.")])
    list(_agent(embedded_kb, model, web_search=searxng).stream("What are the tool library rules?", web=True))
    shown = [m for m in model.prompts[-1] if isinstance(m, ToolMessage)]
    assert len(shown) == 1
    text = str(shown[0].content)
    assert "Borrow up to 3 tools." in text
    assert "<|im_start|>" not in text and "&lt;|im_start|>" in text
    assert text.count("</web_page>") == 2  # the two results' own wrappers, none forged


def test_with_the_switch_off_no_web_tool_is_offered(
    embedded_kb: KnowledgeBase, searxng: WebSearch, stand_in: StandIn
) -> None:
    model = ScriptedChatModel(replies=[AIMessage("I couldn't find that in the knowledge base.")] * 2)
    agent = _agent(embedded_kb, model, web_search=searxng)
    events = list(agent.stream("When is the Harbor Co-op open?"))
    assert model.bound_tools and "web_search" not in model.bound_tools
    assert stand_in.seen == [] and next(e for e in events if isinstance(e, Sources)).web == []
    list(agent.stream("When is the Harbor Co-op open?", web=True))  # the other graph, then this one again
    assert "web_search" in model.bound_tools
    model.replies.append(AIMessage("I couldn't find that in the knowledge base."))
    list(agent.stream("When is the Harbor Co-op open?", web=False))
    assert "web_search" not in model.bound_tools


class Kept(logging.Handler):
    """The audit log's lines, from its own logger (it does not propagate once a data dir keeps it in a file)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def audited() -> Iterator[list[str]]:
    audit, kept = logging.getLogger("kbagent.audit"), Kept()
    level = audit.level
    audit.addHandler(kept)
    audit.setLevel(logging.INFO)
    yield kept.lines
    audit.removeHandler(kept)
    audit.setLevel(level)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpHub]:
    marker = f"kbagent-test-{uuid.uuid4().hex}"
    script = str(REPO / "tests" / "support" / "mcp_outside_server.py")
    path = tmp_path_factory.mktemp("mcp") / "servers.json"
    server = {"command": sys.executable, "args": [script, "stdio", marker], "allowTools": ["lookup"]}
    path.write_text(json.dumps({"mcpServers": {"outside": server}}), encoding="utf-8")
    started = start_mcp(ToolsConfig(mcp_servers=Path(path), mcp_start_timeout_s=90))
    assert started is not None
    yield started
    started.close()


@pytest.mark.slow
def test_an_outside_mcp_tool_reaches_the_agent_and_each_call_is_audited(
    embedded_kb: KnowledgeBase, hub: McpHub, audited: list[str]
) -> None:
    outside, _ = make_mcp_tools(hub)
    model = ScriptedChatModel(
        replies=[tool_call("outside__lookup", {"term": "ferry"}), AIMessage("The harbor ferry leaves at 07:40.")]
    )
    agent = _agent(embedded_kb, model, outside_tools=outside)
    events = list(agent.stream("When does the harbor ferry leave?", caller="198.51.100.7"))
    assert model.bound_tools.count("outside__lookup") == 1 and "web_search" not in model.bound_tools
    end = next(e for e in events if isinstance(e, ToolEnd))
    assert end.name == "outside__lookup" and end.ok and FACT in end.output
    assert "07:40" in fold(events).answer
    assert len(audited) == 1
    line = audited[0]
    assert "198.51.100.7" in line and "outside/lookup" in line and "outcome=ok" in line
    assert "args=17 bytes" in line  # {"term": "ferry"}
    assert "at=20" in line  # when: an ISO date


@pytest.mark.slow
def test_a_failed_outside_call_is_audited_as_failed(
    embedded_kb: KnowledgeBase, hub: McpHub, audited: list[str]
) -> None:
    """A call the server refuses (an argument its schema does not take) is in the log with why."""
    outside, _ = make_mcp_tools(hub)
    model = ScriptedChatModel(replies=[tool_call("outside__lookup", {"word": "ferry"}), AIMessage("Noted.")])
    list(_agent(embedded_kb, model, outside_tools=outside).stream("Ferry?", caller="cli"))
    assert len(audited) == 1 and "caller=cli" in audited[0] and "outcome=ok" not in audited[0]


def test_the_audit_log_is_kept_in_the_data_dir_and_not_on_the_terminal(tmp_path: Path) -> None:
    audit = logging.getLogger("kbagent.audit")
    before = (list(audit.handlers), audit.level, audit.propagate)
    try:
        keep_audit_log(tmp_path / "logs" / "audit.log")
        keep_audit_log(tmp_path / "logs" / "audit.log")  # once per file
        audit.info("outside tool call: caller=cli tool=outside/lookup outcome=ok")
        for handler in audit.handlers:
            handler.flush()
        lines = (tmp_path / "logs" / "audit.log").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1 and lines[0].endswith("caller=cli tool=outside/lookup outcome=ok")
        assert not audit.propagate
    finally:
        for handler in audit.handlers[len(before[0]) :]:
            handler.close()
        audit.handlers[:], audit.level, audit.propagate = before


def test_the_app_offers_web_search_only_when_its_switch_is_on(
    settings: Settings, embedder: Embedder, stand_in: StandIn
) -> None:
    """Through the composition root and the app's services: the configured provider reaches the agent, and a
    question asked with the switch on, and only then, may search the web."""
    stand_in.mode, stand_in.seen[:] = "ok", []
    configured = settings.override(web_search=f"searxng:{stand_in.endpoint('searxng')}", model="openai:scripted")
    model = ScriptedChatModel(
        replies=[
            AIMessage("I couldn't find that in the knowledge base."),
            tool_call("web_search", {"query": "Harbor Co-op hours"}),
            AIMessage("The Harbor Co-op is open Tuesday to Saturday, 10:00 to 18:00."),
        ]
    )
    with Components(configured, embedder=embedder, chat_model=model) as parts:
        svc = Services(parts, [])
        assert svc.web_search_offered
        off = fold(svc.stream("When is the Harbor Co-op open?", None, svc.default_choices()))
        assert "web_search" not in model.bound_tools and off.web == [] and stand_in.seen == []
        choices = replace(svc.default_choices(), web=True)
        on = fold(svc.stream("When is the Harbor Co-op open?", None, choices, caller="127.0.0.1"))
        assert "web_search" in model.bound_tools and on.web[0].url == HOURS_URL and len(stand_in.seen) == 1
