"""One loader per file type behind one function: adding a type is adding a module and a line here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.data import load_json, load_jsonl
from ingest.loaders.ebook import load_epub
from ingest.loaders.errors import LoadError
from ingest.loaders.html import load_html
from ingest.loaders.image import load_image
from ingest.loaders.mail import load_eml, load_mbox
from ingest.loaders.pdf import load_pdf
from ingest.loaders.sheets import load_xls, load_xlsx
from ingest.loaders.slides import load_pptx
from ingest.loaders.table import load_csv
from ingest.loaders.text import load_markdown, load_text
from ingest.loaders.word import load_docx
from ingest.text import ExtractError
from ingest.text.ocr import PageOcr

Loader = Callable[[Path, bytes], list[Document]]
OcrLoader = Callable[[Path, bytes, PageOcr], list[Document]]

LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    ".csv": load_csv,
    ".tsv": load_csv,
    ".json": load_json,
    ".jsonl": load_jsonl,
    ".ndjson": load_jsonl,
    ".eml": load_eml,
    ".mbox": load_mbox,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".xlsm": load_xlsx,
    ".xls": load_xls,
    ".epub": load_epub,
}

OCR_LOADERS: dict[str, OcrLoader] = {  # types whose pages may need OCR: given the file's `PageOcr`
    ".pdf": load_pdf,
    ".png": load_image,
    ".jpg": load_image,
    ".jpeg": load_image,
    ".tif": load_image,
    ".tiff": load_image,
}


def kind_of(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS or path.suffix.lower() in OCR_LOADERS


def load(path: Path, raw: bytes, ocr: PageOcr | None = None) -> list[Document]:
    """Documents with `title` and `format` metadata; LoadError says why not. Where a loader splits a file, each
    document says where it is: `page` (a PDF or TIFF page number) or `location` ("slide 3", "sheet Budget",
    "chapter 2"). A `note` on a document (hidden sheets skipped, rows cut) goes into the file's ingest notes.
    `ocr` reads the pages that need it and tallies them (None: OCR off, each such page a note)."""
    suffix = path.suffix.lower()
    if suffix not in LOADERS and suffix not in OCR_LOADERS:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'!r}")
    if not raw.strip():
        raise LoadError("empty file")
    try:
        if suffix in OCR_LOADERS:
            return OCR_LOADERS[suffix](path, raw, PageOcr() if ocr is None else ocr)
        return LOADERS[suffix](path, raw)
    except ExtractError as exc:
        raise LoadError(str(exc)) from exc


__all__ = ["LOADERS", "OCR_LOADERS", "LoadError", "is_supported", "kind_of", "load"]
