"""The one settings object: typed sections, each defined next to the part that reads it, read from the flat
`KBAGENT_*` variables and `.env` that users already have, built once at the edge and passed down.

`KBAGENT_SEARCH_K=5` sets `settings.search.k`; a section field's alias is its flat name. Provider keys keep
their usual names (`OPENAI_API_KEY`, ...). `Settings(search_k=5)` and `settings.override(search_k=5)` take
the same flat names, so no user's environment or script breaks.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from agent.config import AgentConfig, ProviderKeys
from evaluation.config import EvalConfig
from ingest.config import IngestConfig
from ingest.web.config import FetchConfig
from kbagent.services.config import AppConfig
from knowledge_base.config import EmbeddingConfig, SearchConfig, StoreConfig
from tools.config import SearchKeys, ToolsConfig
from viewer.config import ViewerConfig

PREFIX = "KBAGENT_"
SECTIONS: dict[str, type[BaseModel]] = {
    "store": StoreConfig,
    "embedding": EmbeddingConfig,
    "search": SearchConfig,
    "ingest": IngestConfig,
    "web": FetchConfig,
    "agent": AgentConfig,
    "tools": ToolsConfig,
    "eval": EvalConfig,
    "app": AppConfig,
    "viewer": ViewerConfig,
    "keys": ProviderKeys,
    "search_keys": SearchKeys,
}
UNPREFIXED = {"keys", "search_keys"}  # read under the providers' own variable names


def _flat_fields() -> dict[str, tuple[str, str]]:
    """Flat name (as in `KBAGENT_<NAME>`) → (section, field)."""
    flat: dict[str, tuple[str, str]] = {}
    for section, model in SECTIONS.items():
        for name, info in model.model_fields.items():
            flat[info.alias or name] = (section, name)
    return flat


FLAT = _flat_fields()


def env_name(flat_name: str) -> str:
    section, _ = FLAT[flat_name]
    return flat_name.upper() if section in UNPREFIXED else f"{PREFIX}{flat_name.upper()}"


class _FlatSource(PydanticBaseSettingsSource):
    """pydantic-settings' own environment (or .env) reader, looked up under the flat names of every section."""

    def __init__(self, settings_cls: type[BaseSettings], reader: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        assert isinstance(reader, EnvSettingsSource)  # the .env reader is one too
        self._vars = dict(reader.env_vars)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[object, str, bool]:  # pragma: no cover
        return None, field_name, False  # unused: __call__ reads every section at once

    def __call__(self) -> dict[str, dict[str, str]]:
        """Values by section (`{"search": {"k": "5"}}`), so that pydantic-settings merges them under what a
        caller passes, section by section."""
        found: dict[str, dict[str, str]] = {}
        for flat, (section, name) in FLAT.items():
            value = self._vars.get(env_name(flat).lower())
            if value is not None:
                found.setdefault(section, {})[name] = value
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", env_file_encoding="utf-8", extra="forbid")

    store: StoreConfig = Field(default_factory=StoreConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    web: FetchConfig = Field(default_factory=FetchConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    app: AppConfig = Field(default_factory=AppConfig)
    viewer: ViewerConfig = Field(default_factory=ViewerConfig)
    keys: ProviderKeys = Field(default_factory=ProviderKeys)
    search_keys: SearchKeys = Field(default_factory=SearchKeys)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatSource(settings_cls, env_settings), _FlatSource(settings_cls, dotenv_settings)

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: object) -> object:
        """Flat keyword arguments into their sections. Only a caller passes flat names (the environment comes
        in by section), so a flat value wins over the same field inside a section."""
        if not isinstance(data, dict):
            return data
        nested: dict[str, dict[str, object]] = {}
        for key, value in data.items():
            if key in SECTIONS:
                given = value.model_dump() if isinstance(value, BaseModel) else dict(value)
                nested.setdefault(key, {}).update(given)
        return _place({k: v for k, v in data.items() if k not in SECTIONS}, nested)

    def override(self, **changes: object) -> Settings:
        """A copy with some flat-named settings changed (None leaves a setting as it is), validated again."""
        data: dict[str, dict[str, object]] = {name: getattr(self, name).model_dump() for name in SECTIONS}
        return type(self).model_validate(_place({k: v for k, v in changes.items() if v is not None}, data))

    @property
    def threads_path(self) -> Path:
        return self.store.data_dir / "threads.sqlite3"

    def masked(self) -> dict[str, object]:
        """Effective settings by their flat names, as printable values, secrets masked."""
        out: dict[str, object] = {}
        for flat, (section, name) in FLAT.items():
            value = getattr(getattr(self, section), name)
            if isinstance(value, SecretStr):
                value = "*** (set)" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            out[flat] = value
        return out


def _place(flat: dict[str, object], nested: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Flat-named values into their sections of `nested`; a name no section knows is refused, never ignored."""
    for key, value in flat.items():
        if key not in FLAT:
            raise ValueError(f"unknown setting {key!r}")
        section, name = FLAT[key]
        nested.setdefault(section, {})[name] = value
    return nested


def describe_error(exc: ValidationError) -> str:
    """The first problem as one line that names the variable a user sets: `invalid setting KBAGENT_X: ...`."""
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    name = ".".join(loc)
    if len(loc) >= 2 and loc[0] in SECTIONS:
        field = SECTIONS[loc[0]].model_fields.get(loc[1])
        flat = (field.alias if field else None) or loc[1]
        name = env_name(flat) if flat in FLAT else name
    return f"invalid setting {name}: {first['msg']}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`, with flat-named overrides; a bad value is one clear line."""
    from kbagent.errors import ConfigError

    try:
        return Settings().override(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc)) from exc
