"""How the app is served: theme, CSS, login and the host check. Apart from the tabs, so the layout carries no
server policy and the launch options can be tested without building an app."""

from __future__ import annotations

import ipaddress
import math
import sys
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from kbagent.settings import Settings


LOOPBACK_NAMES = {"localhost", "localhost."}
FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]  # local: no font CDN
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CSS = """
#sources-panel { max-height: 640px; overflow-y: auto; }
#threads input { padding-right: 28px; text-overflow: ellipsis; }  /* the arrow never covers a title */
#chatbot .top-panel { position: static; align-self: flex-end; margin: 4px 4px 0 auto; }  /* above the messages */
#sources-table td, #eval-table td { vertical-align: top; }
@media (max-width: 640px) {  /* a phone: the conversation and the question first, then sources, then the rest */
  #chat-main { order: -2; }
  #chat-sources { order: -1; }
  .tab-container button { padding: 0 5px !important; font-size: 13px !important; }  /* every tab fits, no "…" */
  #chatbot { height: 45vh !important; }
}
.kb-eval { border-collapse: collapse; margin: 0.5em 0; }
.kb-eval td, .kb-eval th { padding: 4px 12px; border-bottom: 1px solid var(--border-color-primary); text-align: left; }
.kb-eval caption { text-align: left; font-weight: 600; padding-bottom: 6px; }
"""


def theme() -> Any:
    """Local fonts only, so a page never asks a font CDN for anything."""
    return gr.themes.Soft(primary_hue="teal", secondary_hue="slate", font=FONTS, font_mono=MONO)


def parse_auth(value: Any) -> tuple[str, str] | None:
    """`KBAGENT_AUTH=user:password` → (user, password); empty → no login."""
    raw = value.get_secret_value() if hasattr(value, "get_secret_value") else (value or "")
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


def launch(demo: gr.Blocks, settings: Settings, **kwargs: Any) -> Any:
    """Start the server with the host, port and login from the settings; never shared."""
    app = settings.app
    auth = parse_auth(app.auth)
    if auth is None and not is_loopback(app.host):
        print(
            f"warning: the app listens on {app.host} without a login; anyone who can reach this machine can "
            "read and change the knowledge base. Set KBAGENT_AUTH=user:password.",
            file=sys.stderr,
        )
    options: dict[str, Any] = {
        "server_name": app.host,
        "server_port": app.port,
        "auth": auth,
        "auth_message": "kbagent: sign in" if auth else None,
        "share": False,
        "theme": theme(),
        "css": CSS,
        "max_file_size": f"{math.ceil(settings.ingest.max_file_mb)}mb",
        "ssr_mode": False,
        "mcp_server": False,
        "pwa": False,
        "footer_links": ["api", "settings"],
        "show_error": False,
    }
    options.update(kwargs)
    options["share"] = False
    return demo.launch(**options)
