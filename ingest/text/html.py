"""HTML → Markdown, one way for saved files and fetched pages, so a page chunks the same however it arrived.

Consent banners are taken out first, for both paths (ingest/text/banners.py). trafilatura finds the main
content (navigation, footers and scripts are left out). When its text is shorter than its own minimum, what it
returns is its whole-page rescue (navigation included, headings and lists flattened), so the page's main element
converted with markdownify is used instead. With a URL, lxml makes links absolute first, because trafilatura
resolves relative links against the site root, not the page. Pathologically nested HTML, which the parsers
truncate or recurse through too deeply, falls back to flat text.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.text.banners import drop_consent_banners, hide_consent_names

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from lxml.html import HtmlElement

CLUTTER = ["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "iframe", "svg", "template"]
HIDDEN = '[role="navigation"], [aria-hidden="true"]'
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
LINK_TARGET = re.compile(r"\]\([^)]*\)")


@dataclass
class Converted:
    title: str
    markdown: str
    tree: HtmlElement | None = None
    """The parsed lxml document (links absolute when a URL was given); None when the HTML could not be parsed."""


def html_to_markdown(html: str, url: str | None = None) -> Converted:
    """Title and main content as Markdown with ATX headings for the splitter; a title heading is added
    when the content has none. Empty `markdown` means the page holds no text."""
    import lxml.html
    from lxml.etree import ParserError

    parser = lxml.html.HTMLParser()
    try:
        tree = lxml.html.document_fromstring(XML_DECLARATION.sub("", html, count=1), parser=parser)
        if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
            raise RecursionError("libxml2 drops what lies deeper than 256 elements")
        if url:
            tree.make_links_absolute(url, resolve_base_href=True, handle_failures="discard")
        title, markdown = _converted(_without_banners(tree), url)
    except (ParserError, ValueError, RecursionError):
        tree, (title, markdown) = None, flat_text(html)
    if markdown and title and not markdown.startswith("#"):
        markdown = f"# {title}\n\n{markdown}"
    return Converted(title, markdown, tree)


def _without_banners(tree: HtmlElement) -> HtmlElement:
    """A copy of the page for conversion: the returned tree keeps the banners' links for the crawler."""
    content = copy.deepcopy(tree)
    drop_consent_banners(content)
    hide_consent_names(content)
    return content


def _converted(tree: HtmlElement, url: str | None) -> tuple[str, str]:
    import trafilatura
    from trafilatura.settings import DEFAULT_CONFIG

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
    markdown = tidy(markdown or "")
    if len(LINK_TARGET.sub("]", markdown)) < DEFAULT_CONFIG.getint("DEFAULT", "MIN_EXTRACTED_SIZE"):
        markdown = _markdownify(tree) or markdown
    return " ".join(title.split()), markdown


def _markdownify(tree: HtmlElement) -> str:
    import lxml.html
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(lxml.html.tostring(tree, encoding="unicode"), "html.parser")
    return main_content_markdown(soup)


def main_content_markdown(soup: BeautifulSoup) -> str:
    """A parsed page's main element (or body) minus scripts, navigation, footers and banners, as Markdown.
    Removes the clutter from `soup` itself."""
    from markdownify import MarkdownConverter

    for tag in soup(CLUTTER):
        tag.decompose()
    for tag in soup.select(HIDDEN):
        tag.decompose()
    body = soup.find("main") or soup.find("article") or soup.body or soup
    return tidy(MarkdownConverter(heading_style="ATX", bullets="-", strip=["img"]).convert_soup(body))


def flat_text(html: str) -> tuple[str, str]:
    """(title, text) by regular expressions alone: for HTML too deeply nested for any tree."""
    from html import unescape

    title = re.search(r"(?is)<title[^>]*>(.*?)</title>", html)
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", html)
    text = re.sub(r"(?s)<[^>]+>", "\n", text)
    lines = [" ".join(line.split()) for line in unescape(text).splitlines()]
    return (" ".join(unescape(title.group(1)).split()) if title else ""), "\n".join(x for x in lines if x)


def tidy(markdown: str) -> str:
    """Trailing spaces gone, runs of blank lines cut to one."""
    text = "\n".join(line.rstrip() for line in markdown.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _text(element: HtmlElement | None) -> str:
    return " ".join(element.text_content().split()) if element is not None else ""
