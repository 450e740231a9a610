"""One loader per file type behind one function: adding a type is adding a module and a line here."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.data import load_json, load_jsonl
from ingest.loaders.ebook import load_epub
from ingest.loaders.errors import LoadError, said
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
from ingest.text.ocr import OcrNeeded, PageOcr
from ingest.text.reading import Reading

Loader = Callable[[Path, bytes, Reading], list[Document]]

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
    ".pdf": load_pdf,  # these and the images may have pages to OCR (the file's `Reading.ocr`)
    ".png": load_image,
    ".jpg": load_image,
    ".jpeg": load_image,
    ".tif": load_image,
    ".tiff": load_image,
}

FORMATS: dict[str, int] = {
    ".json": 2,  # v2: a leaf's path is cut to its last PATH_CHARS characters (a long path was quadratic)
    ".jsonl": 2,
    ".ndjson": 2,
    ".xlsx": 2,  # v2: rows stored ragged, capped in width and cell length
    ".xlsm": 2,
    ".xls": 2,
}
"""The version of a loader's text, where it changed: part of the file's hash, so that on upgrade the files of
that type (and only those) are read again once; chunks whose text did not change keep their vectors."""


def kind_of(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def format_of(path: Path) -> str:
    """'' or "+json-v2": what a file's hash adds for its loader's text format (see FORMATS)."""
    version = FORMATS.get(path.suffix.lower())
    return f"+{kind_of(path)}-v{version}" if version else ""


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load(path: Path, raw: bytes, reading: Reading | PageOcr | None = None) -> list[Document]:
    """Documents with `title` and `format` metadata; LoadError says why not, in one line, whatever the library
    raised. Where a loader splits a file, each document says where it is: `page` (a PDF or TIFF page number) or
    `location` ("slide 3", "sheet Budget", "chapter 2"). A `note` on a document (hidden sheets skipped) goes into
    the file's ingest notes. `reading` holds the file's allowances (characters, pages) and its OCR (a bare
    `PageOcr`: default allowances; None: OCR off, each page that needs it a note). Library warnings go to
    `reading.warnings`, never the terminal."""
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'!r}")
    if not raw.strip():
        raise LoadError("empty file")
    if not isinstance(reading, Reading):
        reading = Reading(ocr=reading or PageOcr())
    with warnings.catch_warnings(record=True) as caught:  # process-wide: the worker reads one file at a time
        warnings.simplefilter("always")
        try:
            return LOADERS[suffix](path, raw, reading)
        except (LoadError, OcrNeeded):
            raise
        except ExtractError as exc:
            raise LoadError(str(exc)) from exc
        except RecursionError as exc:
            raise LoadError(f"nested too deeply to read as a {suffix} file") from exc
        except MemoryError:
            raise
        except Exception as exc:  # the library's own error for a file it can't parse (xlrd: a bare AssertionError)
            raise LoadError(f"corrupt or unreadable {suffix} file ({said(exc)})") from exc
        finally:
            reading.warnings += [_warning(w) for w in caught if _warning(w) not in reading.warnings][:20]


def _warning(caught: warnings.WarningMessage) -> str:
    return " ".join(str(caught.message).split())[:200]


__all__ = ["FORMATS", "LOADERS", "LoadError", "format_of", "is_supported", "kind_of", "load"]
