"""One list of tools: a tool added in one place (a factory in `tools.registry.FACTORIES`) reaches both answer
paths and `kbagent tools`; the small model's tool descriptions come from the tools' own schemas; and no product
module names a tool by a string literal of its own."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from agent.config import AgentConfig
from agent.events import ToolEnd, ToolStart
from agent.memory import ThreadStore
from agent.models import ModelSpec
from agent.runner import Agent
from ingest import IngestConfig, build_ingestor
from knowledge_base import KnowledgeBase
from tests.support.paths import REPO
from tests.support.scripted_model import ScriptedChatModel, tool_call
from tools import registry
from tools.base import AgentTool, ToolParts
from tools.listing import list_tools

PRODUCT = ["agent", "ingest", "knowledge_base", "tools", "ui", "evaluation", "kbagent", "app.py"]


def tide_tools(parts: ToolParts) -> list[AgentTool]:
    @tool("tide_table")
    def tide_table(place: str, day: str = "today") -> str:
        """Look up when high water is at a harbour: the place's name, and the day."""
        return f"High water at {place}: 06:12."

    return [
        AgentTool(tide_table, local=True, local_description="When high water is at a place.", local_args=("place",))
    ]


@pytest.fixture
def kb(embedded_kb: KnowledgeBase, tmp_path: Path) -> KnowledgeBase:
    (tmp_path / "tides.md").write_text("# Tides\n\nThe harbour office posts the tide table for Pier 9 each morning.\n")
    build_ingestor(IngestConfig(), embedded_kb).run([tmp_path / "tides.md"])
    return embedded_kb


@pytest.fixture
def with_tides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one change a new tool needs: its factory in the registry's list."""
    monkeypatch.setattr(registry, "FACTORIES", (*registry.FACTORIES, tide_tools))


def _agent(kb: KnowledgeBase, model: ScriptedChatModel, config: AgentConfig) -> Agent:
    provider = "openai" if config.tool_calling == "on" else "gguf"
    threads = ThreadStore(kb.store.data_dir / "threads.sqlite3")
    return Agent(config, kb, model, ModelSpec(provider, "scripted"), threads)


@pytest.mark.usefixtures("with_tides")
def test_a_tool_added_in_one_place_reaches_both_paths_and_the_listing(kb: KnowledgeBase) -> None:
    calling = ScriptedChatModel(
        replies=[tool_call("tide_table", {"place": "Pier 9"}), AIMessage("High water is at 06:12.")]
    )
    events = list(_agent(kb, calling, AgentConfig(tool_calling="on")).stream("When is high water?"))
    assert "tide_table" in calling.bound_tools
    assert [(e.name, e.output) for e in events if isinstance(e, ToolEnd)] == [
        ("tide_table", "High water at Pier 9: 06:12.")
    ]

    call = '<tool_call>\n{"name": "tide_table", "arguments": {"where": "Pier 9"}}\n</tool_call>'
    local = ScriptedChatModel(replies=[AIMessage(call), AIMessage("High water is at 06:12.")])
    config = AgentConfig(tool_calling="off", local_tool_steps=1)
    events = list(_agent(kb, local, config).stream("When is high water at Pier 9?"))
    offered = str(local.prompts[0][0].content)
    assert '"name": "tide_table"' in offered and "When high water is at a place." in offered
    assert '"day"' not in offered  # the small model is shown the place alone
    assert [e.name for e in events if isinstance(e, ToolStart)][-1] == "tide_table"
    assert "High water at Pier 9: 06:12." in str(local.prompts[1][-2].content)  # its result, then "answer now"

    listed = {t.name: t for t in list_tools(None, [])}
    assert listed["tide_table"].local_loop and listed["tide_table"].origin == "built-in"


def test_the_small_model_reads_the_tools_own_schemas_cut_to_what_it_may_give() -> None:
    entries = registry.build_tools(ToolParts(scraper=lambda url: ""))
    specs = {name: entry.local_spec()["function"] for name, entry in entries.items() if entry.local}
    assert set(specs) == {"search_knowledge_base", "calculator", "scrape_webpage"}
    search = specs["search_knowledge_base"]
    assert search["parameters"]["properties"] == {"query": {"type": "string"}}  # not k or doc_type
    assert search["parameters"]["required"] == ["query"]
    assert search["description"] == "Search the user's documents again, with a query of your own."
    assert set(specs["calculator"]["parameters"]["properties"]) == {"expression"}
    assert json.loads(json.dumps(specs))  # what the prompt holds is JSON


def test_tool_names_are_unique() -> None:
    duplicate = lambda parts: tide_tools(parts) + tide_tools(parts)  # noqa: E731
    with pytest.raises(ValueError, match="tide_table"):
        registry.build_tools(ToolParts(), [duplicate])


def test_no_product_module_compares_a_tool_name_to_a_string_literal() -> None:
    """Tools are found by lookup in the registry, named by their modules' constants: a literal name compared in
    a module (`name == "calculator"`, `name in ("calculator", ...)`) is a second list that drifts."""
    names = set(registry.build_tools(ToolParts(scraper=lambda url: "", outside=[]))) | {"web_search"}
    files = subprocess.run(["git", "ls-files", *PRODUCT], cwd=REPO, capture_output=True, text=True, check=True)
    found = []
    for path in [REPO / f for f in files.stdout.split() if f.endswith(".py")]:
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                sides += [e for side in sides if isinstance(side, ast.Tuple | ast.List | ast.Set) for e in side.elts]
                literals = [c for c in sides if isinstance(c, ast.Constant) and c.value in names]
                found += [f"{path.relative_to(REPO)}:{c.lineno}: {c.value!r}" for c in literals]
    assert found == []
