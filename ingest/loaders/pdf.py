"""PDF text per page, with page numbers kept (1-based) for citations."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError


def load_pdf(path: Path, raw: bytes) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF (needs a password)")
        info_title = ""
        try:
            info_title = str((reader.metadata or {}).get("/Title") or "").strip()
        except Exception:
            info_title = ""
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            text = (page.extract_text() or "").strip()
            if text:
                pages.append((number, text))
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise LoadError(f"corrupt PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    except Exception as exc:
        if "encrypt" in str(exc).lower() or "crypt" in type(exc).__name__.lower():
            raise LoadError("encrypted PDF (unsupported encryption or needs a password)") from exc
        raise LoadError(f"unreadable PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    if not pages:
        raise LoadError("PDF has no extractable text (scanned images need OCR, which is not supported)")
    first_line = pages[0][1].splitlines()[0].strip()
    title = info_title or (first_line if len(first_line) <= 80 else path.stem)
    return [
        Document(page_content=text, metadata={"title": title, "page": number, "format": "text"})
        for number, text in pages
    ]
