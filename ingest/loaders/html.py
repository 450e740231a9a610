"""HTML files to Markdown: the same main-content Markdown web pages fall back to, headings kept for the splitter."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.loaders.text import decode


def html_to_markdown(html: str) -> tuple[str, str]:
    """(title, markdown) of the page's main content."""
    from bs4 import BeautifulSoup

    from tools.web.extract import main_content_markdown  # imported here: the web fetcher loads httpx

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    markdown = main_content_markdown(soup)
    if not title:
        h1 = soup.find("h1")
        title = h1.get_text(" ", strip=True) if h1 else ""
    return title, markdown


def load_html(path: Path, raw: bytes) -> list[Document]:
    html, encoding = _decode_html(raw)
    try:
        title, markdown = html_to_markdown(html)
    except RecursionError:
        title, markdown = _flat_text(html)
    if not markdown:
        raise LoadError("no text in HTML")
    return [
        Document(
            page_content=markdown, metadata={"title": title or path.stem, "format": "markdown", "encoding": encoding}
        )
    ]


def _flat_text(html: str) -> tuple[str, str]:
    """Plain text of pathologically nested HTML, which the Markdown converter can't recurse through."""
    import re

    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
    text = re.sub(r"(?s)<[^>]+>", "\n", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    from html import unescape

    return (unescape(title.group(1).strip()) if title else ""), unescape("\n".join(x for x in lines if x))


def _decode_html(raw: bytes) -> tuple[str, str]:
    """The charset the page declares wins over guessing."""
    import re

    declared = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", raw[:4096], re.IGNORECASE)
    if declared:
        name = declared.group(1).decode("ascii", "ignore")
        try:
            return raw.decode(name), name
        except (LookupError, UnicodeDecodeError):
            pass
    return decode(raw)
