"""One file's bytes → chunks as plain data: the part of an ingest that runs the parsers, which a worker process
runs under a memory limit and a kill timer (`ingest.workers`), or the ingest's own process where asked.

What comes back is small and plain (texts, metadata dicts, notes), so handing it between processes costs next
to nothing; nothing here touches the knowledge base.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.chunking import Chunker, ChunkingConfig
from ingest.loaders import LoadError, load
from ingest.text.ocr import OcrMode, OcrNeeded, OcrReader, PageOcr
from ingest.text.reading import MAX_CHARS, MAX_PAGES, Reading


@dataclass(frozen=True)
class ReadSettings:
    """What reading any file needs to know, the same in every worker."""

    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    max_chars: int = MAX_CHARS
    max_pages: int = MAX_PAGES
    ocr: OcrMode = "auto"
    ocr_timeout_s: float = 60.0
    ocr_max_pixels: int = 50_000_000
    ocr_budget_s: float = 600.0

    def ocr_reader(self) -> OcrReader:
        return _ocr_reader(self.ocr, self.ocr_timeout_s, self.ocr_max_pixels, self.ocr_budget_s)


@dataclass
class FileRead:
    """A file read: its chunks (text, metadata), or why not in one line."""

    title: str = ""
    chunks: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was left out of a file that was read: hidden sheets, what a cap cut, pages OCR did not read."""
    error: str = ""
    status: Literal["read", "failed", "skipped", "ocr"] = "read"
    """read; failed or skipped (`error` says why); ocr: a probe found pages to OCR, read it again without."""
    retry: bool = False
    """The failure may not happen again (a timeout on a busy machine, a worker that died): read it next time."""
    unread_pages: bool = False
    """Pages were left unread that a later ingest may read (OCR off or failed); not what a cap cut."""
    ocr_pages: int = 0
    ocr_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    """What the file's libraries warned about: for the log, never the terminal."""
    peak_mb: float = 0.0
    """The reading process's peak memory so far (a worker's; 0 when read in the ingest's own process)."""
    page_words: dict[int, bytes] = field(default_factory=dict)
    """Page → where OCR found its words (`ingest.text.words.PageWords`, compact), for pages read by OCR."""


def read_file(path: Path, raw: bytes, settings: ReadSettings, ocr: PageOcr) -> FileRead:
    """Load and chunk one file. With a probe `ocr`, a file with pages to OCR comes back as status "ocr"."""
    reading = Reading(ocr=ocr, max_chars=settings.max_chars, max_pages=settings.max_pages)
    try:
        documents = load(path, raw, reading)
        title = str(documents[0].metadata.get("title") or path.stem) if documents else path.stem
        chunks = _chunker(settings.chunking).split(documents, title)
        if not chunks:
            raise LoadError("; ".join(reading.notes)[:300] if reading.notes else "no text found")
    except OcrNeeded:
        return FileRead(status="ocr", warnings=reading.warnings)
    except LoadError as exc:
        status: Literal["failed", "skipped"] = "skipped" if ocr.off and not ocr.enabled else "failed"
        return _tallied(FileRead(error=str(exc), status=status, warnings=reading.warnings), ocr)
    loader_notes = [str(d.metadata["note"]) for d in documents if d.metadata.get("note")]
    read = FileRead(
        title=title,
        chunks=[(chunk.page_content, chunk.metadata) for chunk in chunks],
        notes=[*dict.fromkeys(loader_notes), *reading.notes],
        unread_pages=ocr.incomplete,
        warnings=reading.warnings,
    )
    return _tallied(read, ocr)


def _tallied(read: FileRead, ocr: PageOcr) -> FileRead:
    read.ocr_pages, read.ocr_seconds = ocr.pages, ocr.seconds
    if read.status == "read":
        read.page_words = {page: words.to_bytes() for page, words in ocr.words.items()}
    return read


@functools.cache
def _chunker(config: ChunkingConfig) -> Chunker:
    return Chunker(config)


@functools.cache
def _ocr_reader(mode: OcrMode, timeout_s: float, max_pixels: int, budget_s: float) -> OcrReader:
    """One per settings and process, so a worker's OCR engine is built once and stays warm."""
    return OcrReader(mode, timeout_s, max_pixels, budget_s)


def page_ocr(
    settings: ReadSettings,
    probe: bool,
    on_planned: Callable[[int], None],
    on_page: Callable[[float], None],
    cancelled: Callable[[], bool],
) -> PageOcr:
    """The OCR of one file: a probe only finds out whether it has pages to OCR (with OCR off, never)."""
    reader = settings.ocr_reader()
    if probe:
        return PageOcr(reader if reader.enabled else None, probe=True)
    return PageOcr(reader, on_planned=on_planned, on_page=on_page, cancelled=cancelled)
