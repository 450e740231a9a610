"""One record per model provider: a provider added in one place (a `Provider` in `agent.providers.PROVIDERS`) is
parsed, built, listed by `kbagent models`, offered to app users, calls tools by its own default and takes the
per-model lock when it runs in this process; and the records are the only list of providers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from agent import providers
from agent.config import AgentConfig, ProviderKeys
from agent.models import ModelChoice, app_model_refusal, available_models, parse_model, uses_tool_calling
from agent.providers import PROVIDERS, Provider
from kbagent.components import Components
from kbagent.services.operations import Services, SessionChoices
from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.support.scripted_model import ScriptedChatModel

BUILT: list[tuple[str, float]] = []


def _scripted(name: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> Any:
    BUILT.append((name, config.temperature))
    return ScriptedChatModel(replies=[AIMessage("Nothing in the knowledge base says so.")])


def _status(keys: ProviderKeys) -> ModelChoice:
    return ModelChoice("scripted:<model>", True, "a stand-in, in this process")


@pytest.fixture
def with_scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one change a new provider needs: its record."""
    monkeypatch.setitem(PROVIDERS, "scripted", Provider("scripted", _scripted, _status, in_process=True))


@pytest.mark.usefixtures("with_scripted")
def test_a_provider_added_in_one_place_is_parsed_built_listed_offered_and_locked(
    tmp_path: Path, embedder: Embedder
) -> None:
    spec = parse_model("scripted:tiny")
    assert spec.label == "scripted:tiny" and not uses_tool_calling(AgentConfig(), spec)
    offered = available_models(ProviderKeys())
    assert ModelChoice("scripted:<model>", True, "a stand-in, in this process") in offered

    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    with Components(settings, embedder=embedder) as parts:
        svc = Services(parts, offered)
        assert app_model_refusal("scripted:tiny", svc.models, settings.store.models_path) is None
        agent = svc.agent(SessionChoices(model="scripted:tiny"))
        assert BUILT[-1] == ("tiny", settings.agent.temperature) and agent.spec.label == "scripted:tiny"
        assert svc._model_lock(agent) is not None  # in this process: one answer at a time
        events = list(svc.stream("Who runs the ferry?", None, SessionChoices(model="scripted:tiny")))
        assert events[-1].model == "scripted:tiny"  # type: ignore[union-attr]


def test_every_provider_key_setting_belongs_to_a_provider_record() -> None:
    """The records are the list: each key in `ProviderKeys` is some record's key, and every record has a status."""
    keys = {name for name in ProviderKeys.model_fields if name.endswith(("_api_key", "_token"))}
    assert keys == {p.key for p in PROVIDERS.values() if p.key}
    assert [c.spec.partition(":")[0] for c in available_models(ProviderKeys())] == list(PROVIDERS)
    assert {p.name for p in PROVIDERS.values() if p.in_process} == {"embedded", "gguf", "hf"}
    assert {p.name for p in PROVIDERS.values() if p.tool_calling} == {
        "openai",
        "anthropic",
        "gemini",
        "deepseek",
        "ollama",
    }
    assert providers.__doc__ and "one record" in providers.__doc__
