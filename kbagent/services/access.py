"""Who may come in at the front doors served over HTTP (the app, /mcp, /v1): the login, and the host names
answered without one. One definition, so the app's guard and the MCP SDK's host check cannot disagree."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from kbagent.settings import Settings

LOOPBACK_NAMES = {"localhost", "localhost."}


def parse_auth(value: SecretStr | str | None) -> tuple[str, str] | None:
    """`KBAGENT_AUTH=user:password` → (user, password); empty → no login."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else (value or "")
    if not raw:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise ValueError("KBAGENT_AUTH must be user:password")
    return user, password


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`: listening anywhere else without a login earns a warning."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:7860` → `::1`, `Example.lan.:80` → `example.lan`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rpartition(":")[0].rstrip(".") if ":" in header else header.rstrip(".")


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The names this app answers to without a login: loopback's, the address it listens on (unless that is
    every address) and KBAGENT_ALLOWED_HOSTS."""
    bound = settings.app.host.strip().strip("[]").lower().rstrip(".")
    listens = {bound} if bound not in ("0.0.0.0", "::", "") else set()
    return frozenset({"localhost", "127.0.0.1", "::1", *listens, *settings.app.allowed_host_names})
