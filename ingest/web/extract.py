"""Response bytes → page: the shared decoder and HTML → Markdown conversion (`ingest.text`), plus what only a
fetched page has: its links in document order, rel=canonical, and whether it looks rendered by JavaScript."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.text import ExtractError, html_to_markdown
from ingest.text import decode as decode_text
from ingest.text.html import tidy
from ingest.web.errors import FetchError

if TYPE_CHECKING:
    from lxml.html import HtmlElement

SPA_ROOTS = ("root", "app", "__next", "__nuxt", "svelte", "main-app", "ember-app")
FEW_WORDS = 40


@dataclass
class Extracted:
    title: str
    markdown: str
    links: list[str] = field(default_factory=list)
    canonical: str | None = None
    script_hint: bool = False
    """The HTML looks rendered by JavaScript: an empty SPA root, a <noscript> hint, or scripts around little text."""


def decode(body: bytes, charset: str | None, html: bool) -> tuple[str, str]:
    """(text, encoding) by the shared rules (BOM, header charset, <meta>, UTF-8, detection); FetchError if binary."""
    try:
        return decode_text(body, charset, html=html)
    except ExtractError as exc:
        raise FetchError(str(exc)) from exc


def html_to_page(html: str, url: str) -> Extracted:
    """Title, main content as Markdown (absolute links), the page's links in document order, rel=canonical."""
    converted = html_to_markdown(html, url)
    tree = converted.tree
    if tree is None:
        return Extracted(converted.title, converted.markdown)
    links = [
        href
        for a in tree.iter("a", "area")
        if (href := (a.get("href") or "").strip()) and "nofollow" not in (a.get("rel") or "").lower()
    ]
    canonical = next(
        (
            (link.get("href") or "").strip() or None
            for link in tree.iter("link")
            if "canonical" in (link.get("rel") or "").lower().split()
        ),
        None,
    )
    return Extracted(converted.title, converted.markdown, links, canonical, _script_hint(tree, converted.markdown))


def text_to_page(text: str, url: str) -> Extracted:
    title = next((line.strip().lstrip("# ").strip() for line in text.splitlines() if line.strip()), "")
    return Extracted(title[:200] or url, tidy(text))


def _script_hint(tree: HtmlElement, markdown: str) -> bool:
    words = len(re.sub(r"\(https?://[^)]*\)|[#*|_`>-]", " ", markdown).split())
    empty_root = any(
        not len(el) and not (el.text or "").strip() for root in SPA_ROOTS for el in tree.xpath(f'//*[@id="{root}"]')
    )
    noscript = any("javascript" in (el.text_content() or "").lower() for el in tree.iter("noscript"))
    scripts = any(True for _ in tree.iter("script"))
    if words < FEW_WORDS:
        return scripts or noscript or empty_root
    return (empty_root or noscript) and words < 25 * FEW_WORDS
