"""PDF files, one document per page (`ingest.text.pdf`), page numbers kept (1-based) for citations; pages
without a text layer (scanned) are OCR'd (`ingest.text.ocr`)."""

from __future__ import annotations

import functools
from pathlib import Path

from langchain_core.documents import Document

from ingest.text import pdf_text
from ingest.text.ocr import pdf_page_image
from ingest.text.reading import Reading


def load_pdf(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    pdf = pdf_text(raw, require_text=False, reading=reading)
    ocr = reading.ocr
    ocr.plan(len(pdf.blank))
    scanned = []
    for number in pdf.blank:
        render = functools.partial(pdf_page_image, raw, number, ocr.max_pixels)
        scanned.append((number, reading.take(ocr.read(f"page {number}", render)) if not reading.full else ""))
    pages = sorted(pdf.pages + [(number, text) for number, text in scanned if text])
    if not pages:
        return []
    first_line = pages[0][1].splitlines()[0].strip()
    title = pdf.title or (first_line if len(first_line) <= 80 else path.stem)
    return [
        Document(page_content=text, metadata={"title": title, "page": number, "format": "text"})
        for number, text in pages
    ]
