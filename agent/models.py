"""Every chat model is built here, from `KBAGENT_MODEL=provider:model`, through its provider's record
(`agent.providers.PROVIDERS`, the PrivateGPT pattern: one place turns settings into a model).

`available_models` says what can run on this machine and why the rest can't, for `kbagent models` and the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent import embedded_model
from agent.config import AgentConfig, ProviderKeys
from agent.providers import PROVIDERS, ModelChoice, Provider, Sampling
from kbagent.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["ModelChoice", "ModelFactory", "ModelSpec", "app_model_refusal", "available_models", "parse_model"]


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


def provider_of(spec: ModelSpec) -> Provider:
    return PROVIDERS[spec.provider]


def uses_tool_calling(config: AgentConfig, spec: ModelSpec) -> bool:
    if config.tool_calling != "auto":
        return config.tool_calling == "on"
    return provider_of(spec).tool_calling


@dataclass(frozen=True)
class ModelFactory:
    """Builds any chat model from `provider:model`, through its provider's record."""

    config: AgentConfig
    keys: ProviderKeys
    models_dir: Path

    def build(self, spec: ModelSpec | str | None = None, temperature: float | None = None) -> BaseChatModel:
        """The model for `spec` (None: the configured one); `temperature` overrides the configured one."""
        spec = parse_model(self.config.model if spec is None else spec) if not isinstance(spec, ModelSpec) else spec
        config = self.config if temperature is None else self.config.model_copy(update={"temperature": temperature})
        return provider_of(spec).build(spec.name, self.keys, config, self.models_dir)


def call_settings(spec: ModelSpec, config: AgentConfig, temperature: float) -> Sampling:
    """The call arguments that make one call of a model `build` made sample at `temperature`: a model (a llama.cpp
    instance above all) is built once and shared, and a client's temperature travels with its calls."""
    return provider_of(spec).sampling(config, temperature)


def available_models(keys: ProviderKeys) -> list[ModelChoice]:
    """What `KBAGENT_MODEL` can be set to here, and why the rest can't run: each provider's own line."""
    return [provider.status(keys) for provider in PROVIDERS.values()]


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
    if provider_of(wanted).model_is_path:
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
