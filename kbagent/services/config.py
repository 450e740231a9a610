"""The app's settings section: where it listens, whether it asks for a login, which model files and folders users
may load, which other ways in (MCP, the OpenAI-compatible API) it serves."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from kbagent.sections import Section


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
    allowed_hosts: str = Field(
        "",
        description="Comma-separated host names (or addresses) the app answers to besides localhost and the address "
        "it listens on; without a login every other Host header is refused (DNS rebinding). Needed with "
        "KBAGENT_HOST=0.0.0.0: the names clients reach the machine by.",
    )
    answers_per_client: int = Field(
        4,
        ge=1,
        description="Answers one client address may have running or waiting at once (chat, API, MCP); more are "
        "refused, so one client never holds every answer slot.",
    )
    answer_stall_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a reader may leave an answer's events unread (a client gone, or not reading): then the "
        "answer stops and frees the model.",
    )
    openai_history_chars: int = Field(
        32_000,
        ge=1,
        description="Characters the whole conversation sent to /v1/chat/completions may hold (every user and "
        "assistant turn); more is refused with 400.",
    )
    mcp_max_sessions: int = Field(
        100, ge=1, description="MCP (HTTP) sessions open at once; a new one beyond it is refused until one closes."
    )
    mcp_idle_s: float = Field(
        900.0, gt=0, description="Seconds an MCP (HTTP) session may stay idle before it is closed."
    )
    watch_roots: str = Field(
        "",
        description="Comma-separated folders under which app users may add watched folders; empty: the app watches "
        "none (`kbagent watch` is not limited).",
    )

    @property
    def allowed_host_names(self) -> list[str]:
        return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def watch_root_paths(self) -> list[Path]:
        return [Path(p.strip()).expanduser().resolve() for p in self.watch_roots.split(",") if p.strip()]
