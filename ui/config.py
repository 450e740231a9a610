"""The app's settings section: where it listens, whether it asks for a login, which model files and folders users
may load, which other ways in (MCP, the OpenAI-compatible API) it serves."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from knowledge_base.config import Section


class AppConfig(Section):
    host: str = Field("127.0.0.1", description="Address the app listens on; beyond localhost, set auth.")
    port: int = Field(7860, ge=1, le=65535, description="Port the app listens on.")
    auth: SecretStr | None = Field(
        None,
        description="user:password turns the app's login on; the API, MCP and /v1 then need it too. Masked by "
        "`kbagent config`.",
    )
    free_model_paths: bool = Field(
        False,
        alias="app_free_model_paths",
        description="Let app users load gguf:/hf: models from any path; off: only from the models folder.",
    )
    mcp: bool = Field(
        False, description="Serve the knowledge base over MCP (streamable HTTP at /mcp) beside the app, same login."
    )
    mcp_writes: bool = Field(
        False, description="Offer MCP clients the ingest_url tool (the web guard still applies); off: read-only."
    )
    openai_api: bool = Field(
        False, description="Serve an OpenAI-compatible API (/v1/models, /v1/chat/completions) beside the app."
    )
    watch_roots: str = Field(
        "",
        description="Comma-separated folders under which app users may add watched folders; empty: the app watches "
        "none (`kbagent watch` is not limited).",
    )

    @property
    def watch_root_paths(self) -> list[Path]:
        return [Path(p.strip()).expanduser().resolve() for p in self.watch_roots.split(",") if p.strip()]
