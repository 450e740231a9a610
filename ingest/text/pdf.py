"""PDF → text per page, for PDF files and fetched PDFs alike; page numbers (1-based) are kept for citations."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

from ingest.text.errors import ExtractError
from ingest.text.reading import Reading

PYPDF_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError)
"""What pypdf raises on a corrupt or truncated file besides its own PdfReadError."""


@dataclass
class PdfText:
    title: str
    """The document information's /Title, or ''."""
    pages: list[tuple[int, str]] = field(default_factory=list)
    """(page number, text) of the pages that have text."""
    blank: list[int] = field(default_factory=list)
    """Numbers of the pages without a text layer (scanned ones, or empty)."""

    def text(self) -> str:
        return "\n\n".join(text for _, text in self.pages)


def pdf_text(raw: bytes, *, require_text: bool = True, reading: Reading | None = None) -> PdfText:
    """The text of each page. Raises ExtractError, with one line saying why, for a corrupt or encrypted PDF,
    and, with `require_text`, for one with no text layer (the file loader OCRs those pages instead). Pages past
    `reading`'s page cap are not read, nor any once its character budget is spent."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every quirk of every file
    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError("encrypted PDF (needs a password)")
        result = PdfText(_info_title(reader))
        reading = reading or Reading()
        for number in range(1, reading.pages(len(reader.pages)) + 1):
            if reading.full:
                break
            text = reading.take((reader.pages[number - 1].extract_text() or "").strip())
            if text:
                result.pages.append((number, text))
            else:
                result.blank.append(number)
    except ExtractError:
        raise
    except (PdfReadError, *PYPDF_ERRORS) as exc:
        raise ExtractError(f"corrupt PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    except Exception as exc:  # pypdf's crypto back-ends raise their own types
        if "encrypt" in str(exc).lower() or "crypt" in type(exc).__name__.lower():
            raise ExtractError("encrypted PDF (unsupported encryption or needs a password)") from exc
        raise ExtractError(f"unreadable PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    if require_text and not result.pages:
        raise ExtractError("PDF has no text layer (scanned pages are OCR'd when the PDF is ingested as a file)")
    return result


def _info_title(reader: object) -> str:
    try:
        return str((reader.metadata or {}).get("/Title") or "").strip()  # type: ignore[attr-defined]
    except Exception:  # a broken information dictionary only costs the title
        return ""
