"""HTML files → Markdown through the same conversion as fetched pages (`ingest.text.html`), so a saved page and
the same page fetched are chunked alike."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import decode, html_to_markdown
from ingest.text.reading import Reading


def load_html(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    html, encoding = decode(raw, html=True)
    page = html_to_markdown(html)
    if not page.markdown:
        raise LoadError("no text in HTML")
    metadata = {"title": page.title or path.stem, "format": "markdown", "encoding": encoding}
    return [Document(page_content=reading.take(page.markdown), metadata=metadata)]
