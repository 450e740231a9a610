"""The outside MCP servers file (`KBAGENT_MCP_SERVERS`), in the format desktop MCP clients use:

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/notes"],
                  "env": {"LOG_LEVEL": "warn"}},
        "tickets": {"url": "https://mcp.example.org/mcp", "headers": {"Authorization": "Bearer ${TICKETS_TOKEN}"},
                    "allowTools": ["search_tickets"], "timeoutSeconds": 20, "maxOutputChars": 8000}}}

kbagent's own keys per server: `allowTools` ("all", the default, or the tool names to offer: a tool its server
marks destructive is offered only when named here), `timeoutSeconds` and `maxOutputChars` (the limits of one
call). `${NAME}` in `env` and `headers` values is read from kbagent's environment, so the file holds no secret.
Keys other clients use (`type`, `disabled`, ...) are understood or left alone; a bad server entry is one problem
line, and the other servers go on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kbagent.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class ServerSpec:
    """One outside server: how to reach it and the limits its tools run under."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    allow: Literal["all"] | frozenset[str] = "all"
    timeout_s: float = 30.0
    max_output_chars: int = 20000

    @property
    def origin(self) -> str:
        """Where its tools come from, without secrets (no env, no headers, no user:password in the URL)."""
        if self.command is not None:
            return f"MCP server '{self.name}' (stdio: {' '.join([self.command, *self.args])[:120]})"
        parts = urlsplit(self.url or "")
        port = f":{parts.port}" if parts.port else ""
        return f"MCP server '{self.name}' (HTTP: {parts.scheme}://{parts.hostname}{port}{parts.path})"


class _Entry(BaseModel):
    """A server's entry as written; other clients' keys are allowed and ignored."""

    model_config = ConfigDict(extra="allow")

    command: str | None = Field(None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    type: str | None = None
    disabled: bool = False
    allowTools: Literal["all"] | list[str] = "all"  # the file's camelCase
    timeoutSeconds: float | None = Field(None, gt=0, le=600)
    maxOutputChars: int | None = Field(None, ge=100, le=1_000_000)


def load_servers(path: Path, timeout_s: float, max_output_chars: int) -> tuple[list[ServerSpec], list[str]]:
    """The servers in `path` (limits defaulting to the settings'), and one line per entry left out.
    A file that can't be read as such is a `ConfigError`."""
    data = _read(path)
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f'{path}: no "mcpServers" object (the desktop MCP clients\' format)')
    specs, problems = [], []
    for name, entry in servers.items():
        try:
            spec = _spec(str(name), entry, timeout_s, max_output_chars)
        except ValueError as exc:
            problems.append(f"MCP server '{name}' left out: {exc}")
            continue
        if spec is not None:
            specs.append(spec)
    return specs, problems


def _read(path: Path) -> object:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: over {MAX_FILE_BYTES >> 20} MB, not an MCP servers file")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"can't read the MCP servers file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSON and UTF-8 errors alike
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None


def _spec(name: str, raw: object, timeout_s: float, max_output_chars: int) -> ServerSpec | None:
    """A server's spec, None for a disabled one; a ValueError says what is wrong with the entry."""
    if not name.strip():
        raise ValueError("a server needs a name")
    try:
        entry = _Entry.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc']) or 'entry'}: {first['msg']}") from None
    if entry.disabled:
        return None
    if (entry.command is None) == (entry.url is None):
        raise ValueError('give either "command" (stdio) or "url" (streamable HTTP)')
    if entry.type not in (None, "stdio", "http", "streamable-http", "streamableHttp", "streamable_http"):
        raise ValueError(f'transport "{entry.type}" is not supported (stdio or streamable HTTP)')
    if entry.url is not None and urlsplit(entry.url).scheme not in ("http", "https"):
        raise ValueError("url must be http(s)://…")
    return ServerSpec(
        name=name,
        command=entry.command,
        args=tuple(entry.args),
        env={key: _expand(value) for key, value in entry.env.items()},
        cwd=entry.cwd,
        url=entry.url,
        headers={key: _expand(value) for key, value in entry.headers.items()},
        allow="all" if entry.allowTools == "all" else frozenset(entry.allowTools),
        timeout_s=entry.timeoutSeconds or timeout_s,
        max_output_chars=entry.maxOutputChars or max_output_chars,
    )


def _expand(value: str) -> str:
    """`${NAME}` replaced by kbagent's environment variable NAME; a missing one is a ValueError."""

    def variable(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if found is None:
            raise ValueError(f"${{{match.group(1)}}} is not set in kbagent's environment")
        return found

    return _VARIABLE.sub(variable, value)
