"""Files and folders → chunks → the knowledge base, incrementally, one bad file never stopping the rest.

Reading and splitting run in a background thread while the main thread embeds, and sources are written
in groups so the embedding model always gets full batches, even for folders of one-chunk files. Files with
pages to OCR (images, scanned PDFs) are read on a second thread, so slow OCR never holds up the other files.
Each thread hands its files to a worker process (`ingest.workers`) under a memory limit and a kill timer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from langchain_core.documents import Document

from ingest.chunking import Chunker
from ingest.discovery import FileToIngest, discover
from ingest.loaders import LoadError, format_of, kind_of
from ingest.read import FileRead, ReadSettings
from ingest.report import IngestReport, Outcome, Progress, Status
from ingest.text.ocr import OcrReader
from ingest.workers import InProcess, ReadWorkers
from knowledge_base import ChunkedSource, KnowledgeBase

log = logging.getLogger(__name__)

UNREAD_PAGES = "+unread-pages"  # marks the stored hash of a file whose pages OCR skipped or failed
GROUP_SOURCES = 1024  # and up to write_batch_chunks: longer runs to sort by length, less padding per batch
Item = TypeVar("Item")  # what a background reader prepares: a file, or a text given directly


@dataclass
class TextSource:
    """Text that doesn't come from a file: a web page, a JSONL corpus record."""

    source: str
    text: str
    title: str = ""
    doc_type: str = ""
    kind: str = "text"
    markdown: bool = True
    metadata: dict[str, object] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    """Already split text (a downloaded PDF's pages, page numbers kept); `text` is still what is hashed."""


@dataclass
class Prepared:
    item: ChunkedSource | None = None
    outcome: Outcome | None = None
    later: Callable[[threading.Event], Prepared] | None = None
    """The rest of the work, for the OCR thread (the file has pages to OCR); it stops early once the event is set."""
    read: FileRead | None = None
    """The file as read: its notes and OCR tally, for its ingest line."""


Reader = Callable[[ReadSettings], InProcess | ReadWorkers]
"""Builds what reads the files of one ingest: worker processes (`ReadWorkers`), or this process."""


class Ingestor:
    def __init__(
        self,
        kb: KnowledgeBase,
        chunker: Chunker,
        max_file_bytes: int = 100 * 2**20,
        max_text_chars: int = 5 * 2**20,
        write_batch_chunks: int = 1024,
        ocr: OcrReader | None = None,
        *,
        max_pages: int = 2000,
        reader: Reader = InProcess,
    ) -> None:
        self.kb = kb
        ocr = ocr or OcrReader()
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.write_batch_chunks = write_batch_chunks
        self.settings = ReadSettings(
            chunker.config, max_text_chars, max_pages, ocr.mode, ocr.page_timeout_s, ocr.max_pixels, ocr.file_budget_s
        )
        self.reader = reader

    def run(
        self,
        paths: Iterable[str | Path],
        *,
        globs: list[str] | None = None,
        excludes: list[str] | None = None,
        doc_type: str | None = None,
        sync: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        progress = progress or Progress()
        start = time.perf_counter()
        report = IngestReport()
        files, roots = [], []
        for raw_path in paths:
            path = Path(raw_path).expanduser()
            found, problems = discover(path, globs or [], excludes or [], doc_type)
            files.extend(found)
            report.outcomes.extend(problems)
            if path.is_dir():
                roots.append(path.resolve())
        files = list({str(f.path): f for f in files}.values())
        progress.files_found(len(files))
        for outcome in report.outcomes:
            progress.file_done(outcome)

        with self.kb.writing():
            gone: list[str] = []
            if sync:
                seen = {str(f.path) for f in files}
                for root in roots:
                    gone += [r.source for r in self.kb.sources(prefix=str(root) + os.sep) if r.source not in seen]
            self._update(files, gone, report, progress)
        report.seconds = time.perf_counter() - start
        return report

    def update(self, files: list[FileToIngest], gone: list[str], progress: Progress | None = None) -> IngestReport:
        """Ingest these files and remove the `gone` sources, in one write session: a folder watcher's batch.
        A gone source whose bytes reappear under one of the new files is moved there, keeping its vectors."""
        progress = progress or Progress()
        start = time.perf_counter()
        report = IngestReport()
        progress.files_found(len(files))
        with self.kb.writing():
            self._update(files, gone, report, progress)
        report.seconds = time.perf_counter() - start
        return report

    def _update(self, files: list[FileToIngest], gone: list[str], report: IngestReport, progress: Progress) -> None:
        known = self.kb.source_hashes()
        gone = [source for source in dict.fromkeys(gone) if source in known]
        moves = self._moves(files, gone, known)
        twins: dict[str, str] = {}  # files are walked in a stable order, so the same twin wins every run
        reader = self.reader(self.settings)
        try:
            self._consume(
                self._in_background(
                    files, lambda f, stop: self.prepare(f, known, twins, progress, reader, stop), progress
                ),
                known,
                report,
                progress,
                moves,
            )
        finally:
            reader.close()
        moved_from = {moves[o.source] for o in report.of("moved")}
        for source in self.kb.remove(gone):
            if source not in moved_from:
                outcome = Outcome(source, "removed", "no longer exists")
                report.outcomes.append(outcome)
                progress.file_done(outcome)

    def _moves(self, files: list[FileToIngest], gone: list[str], known: dict[str, str]) -> dict[str, str]:
        """New file → the gone source with the same bytes. Hashes include the doc type, which may differ after a
        move between subfolders, so each new file is hashed under each gone source's doc type."""
        if not gone:
            return {}
        records = [r for r in (self.kb.records.get(s) for s in gone) if r is not None]
        by_hash = {r.content_hash: r.source for r in records}
        doc_types = sorted({r.doc_type for r in records})
        moves: dict[str, str] = {}
        for file in files:
            source = str(file.path)
            if source in known or not by_hash:
                continue
            try:
                if file.path.stat().st_size > self.max_file_bytes:
                    continue
                raw = file.path.read_bytes()
            except OSError:
                continue  # prepare() says why
            for doc_type in doc_types:
                old = by_hash.pop(self._hash(doc_type, raw, format_of(file.path)), None)
                if old is not None:
                    moves[source] = old
                    break
        return moves

    def run_texts(self, items: Iterable[TextSource], progress: Progress | None = None) -> IngestReport:
        """Ingest text sources (same incremental rules as files); `items` may be a lazy iterator."""
        progress = progress or Progress()
        start = time.perf_counter()
        report = IngestReport()
        with self.kb.writing():
            known = self.kb.source_hashes()
            prepared = self._in_background(items, lambda text, stop: self.prepare_text(text, known), progress)
            self._consume(prepared, known, report, progress)
        report.seconds = time.perf_counter() - start
        return report

    def _consume(
        self,
        prepared_items: Generator[Prepared],
        known: dict[str, str],
        report: IngestReport,
        progress: Progress,
        moves: dict[str, str] | None = None,
    ) -> None:
        """Write prepared sources in groups big enough to give the embedder full batches. An error here closes
        `prepared_items` at once, which stops its threads (not only when the traceback is collected).
        `moves`: new source → the removed source it was moved from, whose vectors it may take."""
        moves = moves or {}
        with contextlib.closing(prepared_items):
            pending: list[Prepared] = []
            for prepared in prepared_items:
                if prepared.outcome is not None:
                    report.outcomes.append(prepared.outcome)
                    progress.file_done(prepared.outcome)
                    continue
                pending.append(prepared)
                chunks = sum(len(p.item.chunks) for p in pending if p.item is not None)
                if chunks >= self.write_batch_chunks or len(pending) >= GROUP_SOURCES:
                    self._write(pending, known, report, progress, moves)
                    pending = []
            if pending:
                self._write(pending, known, report, progress, moves)

    def _write(
        self,
        pending: list[Prepared],
        known: dict[str, str],
        report: IngestReport,
        progress: Progress,
        moves: dict[str, str],
    ) -> None:
        items = [p.item for p in pending if p.item is not None]
        donors = {item.source: moves[item.source] for item in items if item.source in moves}
        result = self.kb.write(items, on_embedded=progress.chunks_embedded, donors=donors)
        report.embedded += result.embedded
        report.reused += result.reused + result.copied
        for prepared in pending:
            if (item := prepared.item) is None:
                continue
            status: Status = "updated" if item.source in known else "moved" if item.source in donors else "added"
            message = f"from {donors[item.source]}" if status == "moved" else ""
            outcome = Outcome(item.source, status, message, chunks=len(item.chunks))
            if (read := prepared.read) is not None:
                outcome.notes = list(read.notes)
                outcome.ocr_pages, outcome.ocr_seconds = read.ocr_pages, read.ocr_seconds
            report.outcomes.append(outcome)
            progress.file_done(outcome)

    def _in_background(
        self, items: Iterable[Item], prepare: Callable[[Item, threading.Event], Prepared], progress: Progress
    ) -> Generator[Prepared]:
        """`prepare` runs on a reader thread; what it leaves for `later` (OCR) runs on an OCR thread, which
        ends the stream once the reader is done and the OCR queue drained. Both stop once the stream is closed
        (an error, Ctrl+C): a file being read is abandoned, its worker killed."""
        results: queue.Queue[Prepared | None] = queue.Queue(maxsize=64)
        for_ocr: queue.Queue[Callable[[threading.Event], Prepared] | None] = queue.Queue(maxsize=8)  # file bytes each
        stop = threading.Event()

        def emit(prepared: Prepared) -> None:
            if prepared.item is not None:
                progress.chunks_planned(len(prepared.item.chunks))
            results.put(prepared)

        def read() -> None:
            try:
                for item in items:
                    if stop.is_set():
                        return
                    prepared = prepare(item, stop)
                    if prepared.later is not None:
                        for_ocr.put(prepared.later)
                    else:
                        emit(prepared)
            finally:
                for_ocr.put(None)

        def ocr() -> None:
            try:
                while (later := for_ocr.get()) is not None:
                    if not stop.is_set():  # once stopped, drain only: the reader may wait on a full queue
                        emit(later(stop))
            finally:
                results.put(None)

        threads = [
            threading.Thread(target=read, name="kbagent-ingest-reader", daemon=True),
            threading.Thread(target=ocr, name="kbagent-ingest-ocr", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            while (prepared := results.get()) is not None:
                yield prepared
        finally:
            stop.set()
            while any(thread.is_alive() for thread in threads):  # unblock a thread waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    results.get(timeout=0.1)

    def prepare_text(self, text: TextSource, known: dict[str, str]) -> Prepared:
        content_hash = self._hash(text.doc_type, text.text.encode(), "")
        outcome = Outcome(text.source, "unchanged")
        if known.get(text.source) == content_hash:
            return Prepared(outcome=outcome)
        document = Document(text.text, metadata={"format": "markdown" if text.markdown else "text"})
        chunks = self.chunker.split(text.documents or [document], text.title)
        if not chunks:
            return Prepared(outcome=Outcome(text.source, "failed", "no text found"))
        for chunk in chunks:
            chunk.metadata.update({k: v for k, v in text.metadata.items() if isinstance(v, str | int | float | bool)})
        item = ChunkedSource(text.source, content_hash, chunks, text.title, text.doc_type, text.kind)
        return Prepared(item=item)

    def _hash(self, doc_type: str, raw: bytes, text_format: str) -> str:
        return source_hash(self.chunker.config.fingerprint, doc_type, raw, text_format)

    def prepare(
        self,
        file: FileToIngest,
        known: dict[str, str],
        twins: dict[str, str] | None = None,
        progress: Progress | None = None,
        reader: InProcess | ReadWorkers | None = None,
        stop: threading.Event | None = None,
    ) -> Prepared:
        """Read, hash and split one file; a file with pages to OCR is left for `later`. `twins` maps content
        hashes to the first source that had them, so the same file under a second name is skipped rather than
        stored twice."""
        twins = {} if twins is None else twins
        progress = progress or Progress()
        reader = reader or InProcess(self.settings)
        stop = stop or threading.Event()
        path = file.path
        source = str(path)
        try:
            size = path.stat().st_size
            if size > self.max_file_bytes:
                raise LoadError(f"file too large ({size / 2**20:.1f} MB > {self.max_file_bytes / 2**20:.0f} MB)")
            raw = path.read_bytes()
        except PermissionError:
            return Prepared(outcome=Outcome(source, "failed", "permission denied"))
        except LoadError as exc:
            return Prepared(outcome=Outcome(source, "failed", str(exc)))
        except OSError as exc:
            return Prepared(outcome=Outcome(source, "failed", exc.strerror or str(exc)))
        content_hash = self._hash(file.doc_type, raw, format_of(path))
        if content_hash in twins:
            return Prepared(outcome=Outcome(source, "skipped", f"same content as {twins[content_hash]}"))
        if known.get(source) == content_hash:
            twins[content_hash] = source
            return Prepared(outcome=Outcome(source, "unchanged"))
        read = reader.read(path, raw, probe=True, on_planned=_ignore, on_page=_ignore, stop=stop)
        if read.status == "ocr":  # claims its twins now: the OCR thread reads it later

            def later(stop: threading.Event) -> Prepared:
                ocr_read = reader.read(
                    path, raw, probe=False, on_planned=progress.ocr_planned, on_page=progress.ocr_page_done, stop=stop
                )
                return self._prepared(file, content_hash, ocr_read)

            twins[content_hash] = source
            return Prepared(later=later)
        prepared = self._prepared(file, content_hash, read)
        if prepared.outcome is None:
            twins[content_hash] = source
        return prepared

    def _prepared(self, file: FileToIngest, content_hash: str, read: FileRead) -> Prepared:
        """The file's chunks to write, or its outcome when it was not read."""
        source = str(file.path)
        for warning in read.warnings:
            log.info("%s: %s", source, warning)
        if read.status in ("failed", "skipped"):
            outcome = Outcome(source, read.status, read.error, retry=read.retry)
            outcome.ocr_pages, outcome.ocr_seconds = read.ocr_pages, read.ocr_seconds
            return Prepared(outcome=outcome)
        if read.unread_pages:  # recorded as changed, so that the next ingest tries its unread pages again
            content_hash += UNREAD_PAGES
        chunks = [Document(text, metadata=metadata) for text, metadata in read.chunks]
        root = str(file.root or file.path.parent)
        item = ChunkedSource(source, content_hash, chunks, read.title, file.doc_type, kind_of(file.path), root)
        item.page_words = read.page_words
        return Prepared(item=item, read=read)


def _ignore(value: float) -> None:
    pass


def source_hash(fingerprint: str, doc_type: str, raw: bytes, text_format: str) -> str:
    """What a source's record holds to tell whether it changed: its bytes, how they are read (the chunking
    settings' `fingerprint`, and for some types the loader's text format) and its doc type. A record's hash may
    end in UNREAD_PAGES (pages to read again)."""
    digest = hashlib.sha256()
    digest.update(f"{fingerprint}{text_format}|{doc_type}|".encode())
    digest.update(raw)
    return digest.hexdigest()
