"""The scripts in examples/ run as a user runs them: ingest and search with the real embedding model; the LCEL
chain and the agent against an OpenAI-compatible stand-in (the property is the wiring, not the model's answer)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.openai_stand_in import ANSWER, openai_stand_in
from tests.support.paths import REPO, SAMPLES

EXAMPLES = REPO / "examples"
QUESTION = "What does a Family membership cost?"


def run_example(name: str, *args: str, data: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=data.parent,
        env={**os.environ, "PYTHONPATH": str(REPO), "KBAGENT_DATA_DIR": str(data), **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store made by the first example (membership and FAQ pages), and what the example printed."""
    root = tmp_path_factory.mktemp("examples")
    folder = root / "docs"
    folder.mkdir()
    for name in ("policies/membership.md", "reference/faq.txt"):
        shutil.copy(SAMPLES / name, folder)
    out = run_example("ingest_and_search.py", str(folder), "Family membership price", data=root / "data")
    return root / "data", out


def test_examples_are_short_and_use_only_the_public_api() -> None:
    for script in sorted(EXAMPLES.glob("*.py")):
        text = script.read_text()
        assert len(text.splitlines()) <= 32, script.name
        imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
        ours = [line.split()[1] for line in imports if line.split()[1].split(".")[0] in {"kbagent", "knowledge_base"}]
        assert set(ours) <= {"kbagent.components", "kbagent.settings"}, script.name


@pytest.mark.slow
def test_ingest_and_search_example_finds_the_membership_page(ingested: tuple[Path, str]) -> None:
    _, out = ingested
    lines = out.splitlines()
    assert lines[0].startswith("ingested:") and "2 added" in lines[0]
    assert "membership.md" in lines[1]  # the best hit first


@pytest.mark.slow
def test_lcel_chain_example_feeds_retrieved_passages_to_the_model(ingested: tuple[Path, str]) -> None:
    data, _ = ingested
    with openai_stand_in() as (url, requests):
        env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": url}
        out = run_example("lcel_chain.py", QUESTION, "openai:gpt-4o-mini", data=data, env=env)
    assert out.strip() == ANSWER
    [request] = requests
    system = request.body["messages"][0]["content"]
    assert "[1] Membership" in system and "$70 per year" in system


@pytest.mark.slow
def test_ask_agent_example_prints_the_answer_and_its_citations(ingested: tuple[Path, str]) -> None:
    data, _ = ingested
    with openai_stand_in() as (url, requests):
        env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": url}
        out = run_example("ask_agent.py", QUESTION, "openai:gpt-4o-mini", data=data, env=env)
    answer, *citations = out.strip().splitlines()
    assert answer == ANSWER
    assert len(citations) == 1 and citations[0].startswith("[1] ") and "membership.md" in citations[0]
    assert [r.body["tools"][0]["function"]["name"] for r in requests[:1]] == ["search_knowledge_base"]
