"""Bytes → text for files and fetched pages alike, in the order that is right most often.

1. A byte-order mark (it can't be there by accident); a few bad bytes after it are replaced.
2. The charset the sender declared: the HTTP header, then, for HTML, `<meta charset>` or
   `<meta http-equiv="Content-Type" content="...; charset=...">` within the first `META_WINDOW` bytes.
   A declared charset the bytes are not valid in is skipped: saved pages are often mislabelled.
3. UTF-8, when the bytes are valid UTF-8 (legacy 8-bit text almost never is), or when valid multi-byte
   characters outnumber the bad bytes ten to one (a stray byte in UTF-8 text, which a detector would read as
   some 8-bit code page and garble every accented letter).
4. Detection with charset-normalizer; among equally plausible guesses the Western code pages win.
5. When nothing fits: the declared charset, else UTF-8, with the few bad bytes replaced (a stray byte or a
   cut character must not cost a whole page).

NUL bytes, or control characters in more than 5% of the text, mean binary content, which is refused rather
than ingested as noise.
"""

from __future__ import annotations

import codecs
import re

from ingest.text.errors import ExtractError

BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose mark is its prefix
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
META_WINDOW = 8192
"""Bytes searched for a <meta> charset: WHATWG's prescan reads 1024, but real pages put long heads first."""
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
WINDOWS_1252_LABELS = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii", "l1", "cp819"}
"""WHATWG: text labelled Latin-1 or ASCII is decoded as windows-1252, as every browser does."""
WESTERN = ("cp1252", "latin_1", "iso8859_15")
DETECT_WINDOW = 200_000
NUL_WINDOW = 8192
MAX_CONTROL_RATIO = 0.05
MAX_REPLACED_RATIO = 0.01


def decode(raw: bytes, declared: str | None = None, *, html: bool = False) -> tuple[str, str]:
    """(text, encoding). `declared`: a charset from outside the bytes (an HTTP header); `html`: also honour
    a <meta> charset. Raises ExtractError for binary content."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return _replaced(raw, encoding, f"invalid {encoding} text"), encoding
    if b"\x00" in raw[:NUL_WINDOW]:
        raise ExtractError("binary content, not text (NUL bytes)")
    for encoding in declared_charsets(raw, declared, html):
        try:
            return _checked(raw.decode(encoding)), encoding
        except UnicodeDecodeError:
            continue
    try:
        return _checked(raw.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    if sum(1 for ch in text if ord(ch) > 127) - bad >= 10 * bad:
        return _checked(text), "utf-8"
    detected = _detected(raw)
    if detected is not None:
        return detected
    encoding = next(iter(declared_charsets(raw, declared, html)), "utf-8")
    return _replaced(raw, encoding, "binary content or unknown text encoding"), encoding


def declared_charsets(raw: bytes, declared: str | None, html: bool) -> list[str]:
    """Usable codec names the sender declared, header first, with WHATWG's label rules applied."""
    labels = [declared] if declared else []
    if html and (meta := META_CHARSET.search(raw[:META_WINDOW])):
        label = meta.group(1).decode("ascii", "ignore")
        # A <meta> read as ASCII can't really mean UTF-16/32: WHATWG reads it as UTF-8.
        labels.append("utf-8" if label.lower().startswith(("utf-16", "utf-32")) else label)
    names = []
    for label in labels:
        name = label.strip().lower()
        name = "windows-1252" if name in WINDOWS_1252_LABELS else name
        try:
            codecs.lookup(name)
        except LookupError:
            continue
        names.append(name)
    return names


def _detected(raw: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(raw[:DETECT_WINDOW]))
    if not matches:
        return None
    # Among equally plausible single-byte guesses, Windows-1252 (a superset of Latin-1) is by far the
    # most common in the wild; charset_normalizer's tie order is arbitrary.
    best = min(matches, key=lambda m: (m.chaos, m.encoding not in WESTERN, -m.coherence))
    return _checked(raw.decode(best.encoding, errors="replace")), best.encoding


def _replaced(raw: bytes, encoding: str, refusal: str) -> str:
    """The text with undecodable bytes replaced, unless they are more than a stray few."""
    text = raw.decode(encoding, errors="replace")
    if text.count("\ufffd") > len(text) * MAX_REPLACED_RATIO:
        raise ExtractError(refusal)
    return _checked(text)


def _checked(text: str) -> str:
    if control_ratio(text) > MAX_CONTROL_RATIO:
        raise ExtractError("binary content, not text")
    return text


def control_ratio(text: str) -> float:
    """The share of control characters (other than whitespace) in the first 20,000 characters."""
    sample = text[:20_000]
    if not sample:
        return 0.0
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    return bad / len(sample)
