"""Plain text and Markdown, decoded from bytes: UTF-8 (BOMs included) first, then a detected charset."""

from __future__ import annotations

import re
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError

_BOMS = (
    ("utf-8-sig", b"\xef\xbb\xbf"),
    ("utf-32", b"\xff\xfe\x00\x00"),
    ("utf-32", b"\x00\x00\xfe\xff"),
    ("utf-16", b"\xff\xfe"),
    ("utf-16", b"\xfe\xff"),
)


WESTERN = ("cp1252", "latin_1", "iso8859_15")


def decode(raw: bytes) -> tuple[str, str]:
    """Text and the encoding it was read with; binary content is refused rather than ingested as noise."""
    for encoding, bom in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise LoadError(f"invalid {encoding} text: {exc.reason}") from exc
    if b"\x00" in raw[:8192]:
        raise LoadError("binary content, not text (NUL bytes)")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw[:200_000]))
    if not matches:
        raise LoadError("binary content or unknown text encoding")
    # Among equally plausible single-byte guesses, Windows-1252 (a superset of Latin-1) is by far the
    # most common in the wild; charset_normalizer's tie order is arbitrary.
    best = min(matches, key=lambda m: (m.chaos, m.encoding not in WESTERN, -m.coherence))
    text = raw.decode(best.encoding, errors="replace")
    if _control_ratio(text) > 0.05:
        raise LoadError("binary content, not text")
    return text, best.encoding


def _control_ratio(text: str) -> float:
    sample = text[:20_000]
    if not sample:
        return 0.0
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    return bad / len(sample)


def first_heading(markdown: str) -> str:
    match = re.search(r"^#{1,2}\s+(.+?)\s*#*\s*$", markdown, re.MULTILINE)
    return match.group(1).strip() if match else ""


def load_markdown(path: Path, raw: bytes) -> list[Document]:
    text, encoding = decode(raw)
    if _control_ratio(text) > 0.05:
        raise LoadError("binary content, not text")
    title = first_heading(text) or path.stem
    return [Document(page_content=text, metadata={"title": title, "encoding": encoding, "format": "markdown"})]


def load_text(path: Path, raw: bytes) -> list[Document]:
    text, encoding = decode(raw)
    if _control_ratio(text) > 0.05:
        raise LoadError("binary content, not text")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first if 0 < len(first) <= 80 else path.stem
    return [Document(page_content=text, metadata={"title": title, "encoding": encoding, "format": "text"})]
