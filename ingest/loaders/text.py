"""Plain text and Markdown files, decoded by the shared decoder (`ingest.text.decoding`)."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.documents import Document

from ingest.text import decode
from ingest.text.reading import Reading


def first_heading(markdown: str) -> str:
    match = re.search(r"^#{1,2}\s+(.+?)\s*#*\s*$", markdown, re.MULTILINE)
    return match.group(1).strip() if match else ""


def load_markdown(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    text, encoding = decode(raw)
    text = reading.take(text)
    title = first_heading(text) or path.stem
    return [Document(page_content=text, metadata={"title": title, "encoding": encoding, "format": "markdown"})]


def load_text(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    text, encoding = decode(raw)
    text = reading.take(text)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first if 0 < len(first) <= 80 else path.stem
    return [Document(page_content=text, metadata={"title": title, "encoding": encoding, "format": "text"})]
