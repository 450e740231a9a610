"""Response bytes → text: the declared charset honoured, HTML reduced to its main content as Markdown.

trafilatura finds the main content (navigation, footers, cookie banners and scripts are left out); lxml makes
links absolute first, because trafilatura resolves relative links against the site root, not the page.
"""

from __future__ import annotations

import codecs
import copy
import re
from dataclasses import dataclass, field
from typing import Any

from tools.web.errors import FetchError

# WHATWG: pages labelled Latin-1 or ASCII are decoded as windows-1252.
WINDOWS_1252_LABELS = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii", "l1", "cp819"}
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
SPA_ROOTS = ("root", "app", "__next", "__nuxt", "svelte", "main-app", "ember-app")
CLUTTER = ["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "iframe", "svg", "template"]
HIDDEN = '[role="navigation"], [aria-hidden="true"], .cookie-banner, #cookie-banner'
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
    """(text, encoding): a BOM, then the declared charset (header, then <meta>), then UTF-8, then a guess."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(name, errors="replace"), name
    if b"\x00" in body[:8192]:
        raise FetchError("binary content, not text")
    declared = [charset] if charset else []
    if html and (meta := META_CHARSET.search(body[:8192])):
        declared.append(meta.group(1).decode("ascii", "ignore"))
    for name in declared:
        name = "windows-1252" if name.lower() in WINDOWS_1252_LABELS else name
        try:
            codecs.lookup(name)
        except LookupError:
            continue
        return body.decode(name, errors="replace"), name.lower()
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(body[: 2**20]).best()
    name = best.encoding if best is not None else "windows-1252"
    return body.decode(name, errors="replace"), name


def html_to_page(html: str, url: str) -> Extracted:
    """Title, main content as Markdown (absolute links), the page's links in document order, rel=canonical."""
    import lxml.html
    import trafilatura
    from lxml.etree import ParserError

    try:
        tree = lxml.html.document_fromstring(html)
    except (ParserError, ValueError) as exc:
        raise FetchError(f"unreadable HTML: {exc}") from exc
    tree.make_links_absolute(url, resolve_base_href=True, handle_failures="discard")
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
    metadata = trafilatura.extract_metadata(copy.deepcopy(tree), default_url=url)
    title = (metadata.title if metadata else "") or _text(tree.find(".//title")) or _text(tree.find(".//h1"))
    markdown = trafilatura.extract(
        copy.deepcopy(tree),
        url=url,
        output_format="markdown",
        include_links=True,
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        include_images=False,
        favor_recall=True,
    )
    markdown = _tidy(markdown or _markdownify(tree))
    if markdown and title and not markdown.startswith("#"):
        markdown = f"# {title}\n\n{markdown}"
    return Extracted(title.strip(), markdown, links, canonical, _script_hint(tree, markdown))


def text_to_page(text: str, url: str) -> Extracted:
    title = next((line.strip().lstrip("# ").strip() for line in text.splitlines() if line.strip()), "")
    return Extracted(title[:200] or url, _tidy(text))


def _script_hint(tree: object, markdown: str) -> bool:
    words = len(re.sub(r"\(https?://[^)]*\)|[#*|_`>-]", " ", markdown).split())
    empty_root = any(
        not len(el) and not (el.text or "").strip()
        for root in SPA_ROOTS
        for el in tree.xpath(f'//*[@id="{root}"]')  # type: ignore[attr-defined]
    )
    noscript = any(
        "javascript" in (el.text_content() or "").lower()
        for el in tree.iter("noscript")  # type: ignore[attr-defined]
    )
    scripts = any(True for _ in tree.iter("script"))  # type: ignore[attr-defined]
    if words < FEW_WORDS:
        return scripts or noscript or empty_root
    return (empty_root or noscript) and words < 25 * FEW_WORDS


def _markdownify(tree: object) -> str:
    """The fallback for pages trafilatura finds too short."""
    import lxml.html
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(lxml.html.tostring(tree, encoding="unicode"), "html.parser")  # type: ignore[arg-type]
    return main_content_markdown(soup)


def main_content_markdown(soup: Any) -> str:
    """A parsed page's main element (or body) minus scripts, navigation, footers and banners, as Markdown with
    ATX headings for the splitter. Removes the clutter from `soup` itself."""
    from markdownify import MarkdownConverter

    for tag in soup(CLUTTER):
        tag.decompose()
    for tag in soup.select(HIDDEN):
        tag.decompose()
    body = soup.find("main") or soup.find("article") or soup.body or soup
    return _tidy(MarkdownConverter(heading_style="ATX", bullets="-", strip=["img"]).convert_soup(body))


def _tidy(markdown: str) -> str:
    text = "\n".join(line.rstrip() for line in markdown.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _text(element: object) -> str:
    return " ".join(element.text_content().split()) if element is not None else ""  # type: ignore[attr-defined]
