"""Building chat models: the split GGUF files are verified on every first use in a process, the `hf:` path
loads a local GGUF file or folder in 4-bit, and the OpenAI-compatible providers reach their (overridable)
endpoints with the right model, key and tools."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.events import Done, ToolEnd
from kbagent.components import Components
from kbagent.errors import ConfigError
from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.conftest import REPO, SAMPLES
from tests.openai_stand_in import ANSWER, openai_stand_in
from tests.small_model import SMALL


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * 2**20):
            digest.update(block)
    return digest.hexdigest()


def _flip_a_byte(path: Path, restore_mtime: bool) -> None:
    """One byte flipped in place: same file, same size, and (if asked) the same modification time."""
    before = path.stat()
    with path.open("r+b") as f:
        f.seek(before.st_size // 2)
        byte = f.read(1)
        f.seek(before.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    if restore_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert (after.st_mtime_ns == before.st_mtime_ns) == restore_mtime


@pytest.mark.slow
@pytest.mark.parametrize("restore_mtime", [True, False], ids=["mtime-restored", "mtime-changed"])
@pytest.mark.parametrize("process", ["same-process", "new-process"])
def test_a_model_file_corrupted_in_place_is_joined_again(
    tmp_path: Path, restore_mtime: bool, process: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = SMALL.ensure(tmp_path)
    assert SMALL.ensure(tmp_path) == path  # verified once; the second use in this process does not hash again
    _flip_a_byte(path, restore_mtime)
    assert _sha256(path) != SMALL.sha256
    if process == "same-process":
        with caplog.at_level(logging.WARNING, logger="agent.embedded_model"):
            assert SMALL.ensure(tmp_path) == path
        assert "doesn't match its published sha256" in caplog.text
    else:  # a later run: nothing remembered from this one
        code = f"from pathlib import Path; from tests.small_model import SMALL; SMALL.ensure(Path({str(tmp_path)!r}))"
        run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert "doesn't match its published sha256" in run.stderr
    assert _sha256(path) == SMALL.sha256


@pytest.mark.slow
def test_a_corrupted_model_file_without_its_parts_is_refused(tmp_path: Path) -> None:
    path = SMALL.ensure(tmp_path)
    _flip_a_byte(path, restore_mtime=True)
    orphan = dataclasses.replace(SMALL, module="kbagent_no_such_part{}")  # the same file, its parts uninstalled
    with pytest.raises(ConfigError, match=r"doesn't match its published sha256.*part 1 is not installed"):
        orphan.ensure(tmp_path)


# ---- anthropic:, gemini:, deepseek: through their OpenAI-compatible endpoints ------------------------------

PROVIDERS = [("anthropic", "anthropic_api_key"), ("gemini", "google_api_key"), ("deepseek", "deepseek_api_key")]


@pytest.fixture(scope="module")
def membership_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    """A real embedded knowledge base holding the sample co-op's membership page."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("kb"), _env_file=None)
    with Components(settings, embedder=embedder) as parts:
        parts.ingest([SAMPLES / "policies" / "membership.md"])
    return settings


@pytest.mark.parametrize(("provider", "key_field"), PROVIDERS)
def test_openai_compatible_provider_gets_model_key_and_tools(
    provider: str, key_field: str, membership_settings: Settings, embedder: Embedder
) -> None:
    key = f"sk-{provider}-test"
    with openai_stand_in() as (url, requests):
        settings = membership_settings.override(
            model=f"{provider}:{provider}-test-model", **{key_field: key, f"{provider}_base_url": url}
        )
        with Components(settings, embedder=embedder) as parts:
            agent = parts.agent()
            assert agent.tool_calling  # on by default for API models
            events = list(agent.stream("How much does a Family membership cost per year?"))
    done = events[-1]
    assert isinstance(done, Done) and done.answer == ANSWER, events[-3:]
    assert [r.path for r in requests] == ["/v1/chat/completions"] * 2  # the tool call, then the answer
    for request in requests:
        assert request.authorization == f"Bearer {key}"
        assert request.body["model"] == f"{provider}-test-model"
        assert request.body["stream"] is True
        names = {tool["function"]["name"] for tool in request.body["tools"]}
        assert names == {"search_knowledge_base", "calculator", "scrape_webpage"}
    # The search the stand-in asked for ran against the real knowledge base, and its passages went back.
    tool_results = [m["content"] for m in requests[1].body["messages"] if m["role"] == "tool"]
    assert len(tool_results) == 1 and "$70 per year" in tool_results[0]
    ends = [e for e in events if isinstance(e, ToolEnd)]
    assert [(e.name, e.ok) for e in ends] == [("search_knowledge_base", True)]


def test_openai_compatible_provider_without_streaming(membership_settings: Settings) -> None:
    with openai_stand_in() as (url, requests):
        settings = membership_settings.override(deepseek_api_key="sk-d", deepseek_base_url=url)
        model = Components(settings).models.build("deepseek:deepseek-chat")
        reply = model.model_copy(update={"streaming": False}).invoke("Say something.")
    assert reply.content == ANSWER
    assert requests[0].body["model"] == "deepseek-chat" and not requests[0].body.get("stream")
    assert requests[0].authorization == "Bearer sk-d"


def test_provider_endpoints_default_to_the_public_ones() -> None:
    keys = Settings(_env_file=None).keys
    assert keys.anthropic_base_url == "https://api.anthropic.com/v1/"
    assert keys.gemini_base_url == "https://generativelanguage.googleapis.com/v1beta/openai/"
    assert keys.deepseek_base_url == "https://api.deepseek.com/v1"
