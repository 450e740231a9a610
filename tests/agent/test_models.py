"""Building chat models: the split GGUF files are verified again whenever they changed, the `hf:` path
loads a local GGUF file or folder in 4-bit, and the OpenAI-compatible providers reach their (overridable)
endpoints with the right model, key and tools."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from agent.events import Done, Sources, Token, ToolEnd
from agent.hf_model import LoadPlan, current_plan, plan_for
from agent.providers import _hf_status
from kbagent.components import Components
from kbagent.errors import ConfigError
from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder
from tests.support.files import flip_a_byte
from tests.support.openai_stand_in import ANSWER, openai_stand_in
from tests.support.paths import REPO, SAMPLES
from tests.support.small_model import SMALL


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * 2**20):
            digest.update(block)
    return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("restore_mtime", [True, False], ids=["mtime-restored", "mtime-changed"])
@pytest.mark.parametrize("process", ["same-process", "new-process"])
def test_a_model_file_corrupted_in_place_is_joined_again(
    tmp_path: Path, restore_mtime: bool, process: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = SMALL.ensure(tmp_path)
    assert SMALL.ensure(tmp_path) == path  # verified once; the second use in this process does not hash again
    flip_a_byte(path, restore_mtime)
    assert _sha256(path) != SMALL.sha256
    if process == "same-process":
        with caplog.at_level(logging.WARNING, logger="agent.embedded_model"):
            assert SMALL.ensure(tmp_path) == path
        assert "doesn't match its published sha256" in caplog.text
    else:  # a later run: nothing remembered from this one
        code = (
            "from pathlib import Path; from tests.support.small_model import SMALL; "
            f"SMALL.ensure(Path({str(tmp_path)!r}))"
        )
        run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert "doesn't match its published sha256" in run.stderr
    assert _sha256(path) == SMALL.sha256


@pytest.mark.slow
def test_a_corrupted_model_file_without_its_parts_is_refused(tmp_path: Path) -> None:
    path = SMALL.ensure(tmp_path)
    flip_a_byte(path, restore_mtime=True)
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


# ---- hf: transformers from a local GGUF file or folder, 4-bit NF4 where bitsandbytes runs -----------------

QUESTION = "How much does a Family membership cost per year?"


def test_hf_load_plan_on_each_kind_of_machine() -> None:
    both = frozenset({"cuda", "cpu"})
    assert plan_for(cuda=True, bnb_devices=both, cuda_bf16=True, cpu_bf16=False) == LoadPlan("cuda", "bfloat16", True)
    # A GPU without bitsandbytes: 16-bit weights, bfloat16 where the GPU has it.
    assert plan_for(True, frozenset(), cuda_bf16=True, cpu_bf16=False) == LoadPlan("cuda", "bfloat16", False)
    assert plan_for(True, frozenset(), cuda_bf16=False, cpu_bf16=False) == LoadPlan("cuda", "float16", False)
    # A CPU: NF4 where the installed bitsandbytes has a CPU backend, computing in bfloat16 where the CPU does.
    assert plan_for(False, both, cuda_bf16=False, cpu_bf16=True) == LoadPlan("cpu", "bfloat16", True)
    assert plan_for(False, both, cuda_bf16=False, cpu_bf16=False) == LoadPlan("cpu", "float32", True)
    assert plan_for(False, frozenset({"cuda"}), cuda_bf16=False, cpu_bf16=True) == LoadPlan("cpu", "float32", False)
    assert "16-bit bfloat16" in LoadPlan("cuda", "bfloat16", False).describe()
    assert "4-bit NF4" in LoadPlan("cpu", "bfloat16", True).describe()
    assert "full precision" in LoadPlan("cpu", "float32", False).describe()


def test_hf_status_says_what_the_loader_does_here() -> None:
    choice = _hf_status()
    usable, reason = choice.usable, choice.reason
    plan = current_plan()
    assert usable and reason.startswith(plan.describe())
    # These machines have no GPU and bitsandbytes 0.50, whose CPU backend quantises: NF4 on the CPU.
    assert (plan.device, plan.nf4) == ("cpu", True), reason


def test_hf_refuses_what_it_cannot_load_offline(tmp_path: Path) -> None:
    factory = Components(Settings(data_dir=tmp_path, _env_file=None)).models
    with pytest.raises(ConfigError, match="no GGUF file"):
        factory.build("hf:/nowhere/model.gguf")
    with pytest.raises(ConfigError, match=r"holds no transformers model \(config.json\)"):
        factory.build(f"hf:{tmp_path}")
    with pytest.raises(ConfigError, match="not available offline"):
        factory.build("hf:kbagent-tests/never-downloaded")  # not in the Hugging Face cache, and never fetched


def _linear_layers(chat_model: Any) -> dict[str, int]:
    """How many linear layers of each kind (and 4-bit quant type) the model behind an `hf:` chat model has."""
    counts: dict[str, int] = {}
    for module in chat_model.llm.pipeline.model.modules():
        if isinstance(module, torch.nn.Linear):
            kind = type(module).__name__ + (
                f"/{module.weight.quant_type}" if hasattr(module.weight, "quant_type") else ""
            )
            counts[kind] = counts.get(kind, 0) + 1
    return counts


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return SMALL.ensure(tmp_path_factory.mktemp("small-model"))


@pytest.mark.slow
def test_hf_gguf_file_answers_in_4bit(small_gguf: Path, membership_settings: Settings, embedder: Embedder) -> None:
    settings = membership_settings.override(model=f"hf:{small_gguf}", max_tokens=160, temperature=0)
    with Components(settings, embedder=embedder) as parts:
        agent = parts.agent()
        assert agent.spec.label == f"hf:{small_gguf}" and not agent.tool_calling
        # Every linear layer but the output head (tied to the embeddings) is 4-bit NF4 on the CPU.
        assert _linear_layers(agent.model) == {"Linear4bit/nf4": 24 * 7, "Linear": 1}
        events = list(agent.stream(QUESTION))
    done = events[-1]
    assert isinstance(done, Done), events[-3:]
    assert sum(isinstance(e, Token) for e in events) > 3  # streamed
    assert "70" in done.answer, done.answer
    sources = next(e for e in events if isinstance(e, Sources))
    assert any("$70 per year" in p.text for p in [*sources.cited, *sources.retrieved])  # the fact reached it
    assert all(f"[{p.n}]" in done.answer for p in sources.cited)


@pytest.fixture(scope="module")
def small_folder(small_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small model as a transformers folder (config, safetensors, tokenizer), converted from its GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("small-folder")
    where = {"gguf_file": small_gguf.name, "local_files_only": True}
    AutoTokenizer.from_pretrained(small_gguf.parent, **where).save_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(small_gguf.parent, dtype=torch.bfloat16, **where)
    # The GGUF reader's markers: without `kernels` it dequantised every weight, so these are plain bfloat16.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_hf_local_folder_answers_in_4bit(small_folder: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_tokens=16, temperature=0, _env_file=None)
    model = Components(settings).models.build(f"hf:{small_folder}")
    assert _linear_layers(model) == {"Linear4bit/nf4": 24 * 7, "Linear": 1}
    reply = model.invoke("What is the capital of France? Answer with one word.")
    assert "Paris" in reply.content
