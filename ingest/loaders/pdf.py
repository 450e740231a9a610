"""PDF files, one document per page (`ingest.text.pdf`), page numbers kept (1-based) for citations."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from ingest.text import pdf_text


def load_pdf(path: Path, raw: bytes) -> list[Document]:
    pdf = pdf_text(raw)
    first_line = pdf.pages[0][1].splitlines()[0].strip()
    title = pdf.title or (first_line if len(first_line) <= 80 else path.stem)
    return [
        Document(page_content=text, metadata={"title": title, "page": number, "format": "text"})
        for number, text in pdf.pages
    ]
