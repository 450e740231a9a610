"""Text from documents and models made safe and short for the app's Markdown and HTML: escaping, quoting, paths as
their users know them. Every tab's formatting uses these."""

from __future__ import annotations

import html
from collections.abc import Mapping
from urllib.parse import quote as quote_url
from urllib.parse import urlsplit

from knowledge_base.records import display_path

MAX_PATH_CHARS = 60  # longer paths are cut in the middle: the folder's start and the file name both show
URL_SAFE = "/:?#@!$&*+,;=%~"  # kept in a web link's address; brackets, quotes, backslashes, spaces are encoded


def shown(source: str, names: Mapping[str, str]) -> str:
    """What the user calls `source`: its path relative to the folder it was ingested from, or its URL."""
    return names.get(source) or display_path(source)


def middle_cut(text: str, limit: int = MAX_PATH_CHARS) -> str:
    """`text` cut in the middle to `limit` characters: a path keeps its first folders and its file name."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"


def path_html(source: str, names: Mapping[str, str]) -> str:
    """A source for HTML and Markdown: what the user calls it, the full path or URL on hover."""
    return f'<code title="{html.escape(source)}">{html.escape(middle_cut(shown(source, names)))}</code>'


def plain_text(text: str, limit: int) -> str:
    """A passage as readable plain text: emphasis markers and table rules dropped, cells separated by ' · '."""
    lines = []
    for line in text.splitlines():
        line = line.replace("**", "").replace("__", "").strip()
        if line.startswith("|") or line.endswith("|"):
            if set(line) <= set("|-: "):
                continue
            line = " · ".join(cell.strip() for cell in line.strip("|").split("|"))
        lines.append(" ".join(line.split()))
    text = "\n".join(line for n, line in enumerate(lines) if line or (n and lines[n - 1]))
    return text[:limit].rstrip() + ("…" if len(text) > limit else "")


def quote(text: str) -> str:
    """Escaped text as a Markdown block quote, line breaks kept."""
    return "\n".join(f"> {text_only(line)}  " if line else ">" for line in text.splitlines())


def text_only(text: str) -> str:
    """`md_escape`, and `://` and `www.` escaped too: GitHub-flavoured Markdown makes links of bare addresses in
    text, and outside text (a page, a search result) is shown, never linked."""
    return md_escape(text).replace("://", ":\\/\\/").replace("www.", "www\\.")


def url_text(url: str) -> str:
    """An outside address as Markdown text that no renderer makes a link of (`text_only`)."""
    return text_only(middle_cut(url, 80))


def web_link(url: str) -> str:
    """An outside address as a link the user may click (it opens a new tab; nothing loads before): shown as
    escaped text, and every character that could end the link's destination or start markup percent-encoded, so
    the address can't add an image or a second link. Anything but http(s) is text only."""
    parts = urlsplit(url)
    shown = url_text(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return shown
    return f"[{shown}]({quote_url(url, safe=URL_SAFE)})"


def md_escape(text: str) -> str:
    """Text shown as text: no HTML, no Markdown structure (links, emphasis, headings) from documents."""
    text = html.escape(text, quote=False)
    for ch in "\\`*_[]#|":
        text = text.replace(ch, "\\" + ch)
    return text
