"""A recorded source id (and chunk id) → a `View`: what the app, the terminal and the APIs show for a citation.

Only what the knowledge base records is opened: the source id is looked up in the records (an id not recorded
is refused, and ids are checked for their shape before), the chunk must be one the record owns, and the file is
the record's own path, read only when it still is that regular file (no link to elsewhere). Who may read the
knowledge base is the caller's to check (the services, with the principal), as for every other read.

A file that is gone says so in one line, and so does one whose bytes differ from those ingested (the highlight
then shows where the passage's text is now, found by its text, never an old offset). An address whose chunk id
has changed since the answer (the file was edited and ingested again) falls back to the passage text saved with
the answer. Drawing and parsing run in a worker (`ingest.workers`), under its memory limit and kill timer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.loaders import format_of
from ingest.pipeline import UNREAD_PAGES, source_hash
from ingest.text.words import PageWords
from ingest.workers import InProcess, ReadWorkers, WorkerError
from kbagent.errors import UserError
from knowledge_base import KnowledgeBase
from knowledge_base.records import SourceRecord, location_of
from viewer.address import CHUNK_ID, SOURCE_ID
from viewer.config import ViewerConfig
from viewer.documents import TextRequest, TextView, view_file, view_text
from viewer.locate import Span, passage_body
from viewer.pages import PageImage, PageRequest, draw_image, draw_pdf_page

IMAGES = {"png", "jpg", "jpeg", "tif", "tiff"}
Status = Literal["ok", "edited", "missing", "changed", "unreadable"]
NEIGHBOUR_CHUNKS = 6


class UnknownSource(UserError):
    """No such source (or chunk) in this knowledge base: the same answer for one that exists elsewhere."""


Runner = ReadWorkers | InProcess
"""Where drawing and parsing run: worker processes under the viewer's limits, or this process (tests)."""


@dataclass
class View:
    """A citation shown: the passage, its place, and the page image or the document's text around it."""

    source_id: str
    source: str
    title: str
    kind: str
    passage: str
    """The cited passage's text (less its context header), as stored, or as saved with the answer."""
    status: Status = "ok"
    note: str = ""
    """One line when the view is not the plain one: moved or deleted, edited since, changed since the answer."""
    chunk_id: str = ""
    page: int | None = None
    location: str = ""
    page_image: PageImage | None = None
    text: TextView | None = None
    file_link: str = ""
    """file://…#page=N for a file (a PDF's page): for the terminal, and for a user who may open the original."""
    url: str = ""
    """A web page's own address: a link the user may click, never loaded by the viewer."""
    backing: list[Span] = field(default_factory=list)
    """The spans of `passage` that back the answer's sentence."""

    @property
    def found(self) -> bool:
        """Whether the passage was found (and highlighted) in what is shown."""
        if self.page_image is not None:
            return bool(self.page_image.found)
        return bool(self.text is not None and self.text.found)


class SourceViewer:
    """Views of one knowledge base's sources. `runner` draws and parses (a `ReadWorkers` with the viewer's
    limits in the app); `fingerprint` is the chunking settings' (to tell an edited file by its hash)."""

    def __init__(
        self, kb: KnowledgeBase, runner: Runner, config: ViewerConfig, fingerprint: str, max_file_bytes: int
    ) -> None:
        self.kb = kb
        self.runner = runner
        self.config = config
        self.fingerprint = fingerprint
        self.max_file_bytes = max_file_bytes

    def view(
        self,
        source_id: str,
        chunk_id: str = "",
        *,
        saved_passage: str = "",
        backing: Sequence[Span] = (),
        page: int | None = None,
        as_text: bool = False,
    ) -> View:
        """The view of a recorded source at a chunk (or its saved passage text, or its start); `backing`: the
        supporting spans in the chunk's text (`agent.citations.SupportSpans`); `page`: another page than the
        chunk's (the next, the previous); `as_text`: a PDF's page as its text, not drawn (the terminal).
        Raises UnknownSource for an id not recorded."""
        record = self._record(source_id)
        chunk_text, meta, status, note = self._chunk(record, chunk_id, saved_passage)
        offset, passage = passage_body(chunk_text)
        spans = [(max(s - offset, 0), e - offset) for s, e in backing if e > offset]
        view = View(record.source_id, record.source, record.title, record.kind, passage, status, note, chunk_id)
        view.backing, view.location = spans, location_of(meta)
        stored_page = meta.get("page")
        view.page = page or (int(stored_page) if stored_page and isinstance(stored_page, int | float | str) else None)
        if "://" in record.source:
            view.url = record.source
            self._stored(view, record, chunk_id)
            return view
        raw = self._file(view, record)
        if raw is None:
            return view
        self._shown(view, record, raw, meta, as_text)
        return view

    def _record(self, source_id: str) -> SourceRecord:
        record = self.kb.source_by_id(source_id) if SOURCE_ID.fullmatch(source_id or "") else None
        if record is None:
            raise UnknownSource(f"no source {source_id[:40]!r} in this knowledge base")
        return record

    def _chunk(self, record: SourceRecord, chunk_id: str, saved: str) -> tuple[str, Mapping[str, object], Status, str]:
        """(the chunk's text, its metadata, status, note): the recorded chunk, else the saved passage."""
        if chunk_id and CHUNK_ID.fullmatch(chunk_id) and chunk_id in record.chunk_ids:
            rows = self.kb.keywords.rows([chunk_id])
            metas = self.kb.collection.get(ids=[chunk_id], include=["metadatas"])["metadatas"] or [{}]
            if rows:
                return rows[0].text, dict(metas[0] or {}), "ok", ""
        if not chunk_id:
            return "", {}, "ok", ""
        if saved:
            note = f"{record.display} changed since this answer: its passage is shown where its text is now"
            return saved, {}, "changed", note
        raise UnknownSource(f"no passage {chunk_id[:40]!r} in this source (it changed since), and no saved text")

    def _file(self, view: View, record: SourceRecord) -> bytes | None:
        """The recorded file's bytes, or None with the view saying why (moved, deleted, edited into a link)."""
        path = record.source
        try:
            info = os.lstat(path)
        except OSError:
            view.status = "missing"
            view.note = (
                f"{record.display} is no longer at {path} (moved or deleted): ingest it again where it is now, "
                f"or remove it (kbagent remove {path})"
            )
            return None
        if not stat.S_ISREG(info.st_mode) or os.path.realpath(path) != path:
            view.status, view.note = "unreadable", f"{record.display} is no longer a regular file at {path}"
            return None
        if info.st_size > self.max_file_bytes:
            view.status, view.note = "unreadable", f"{record.display} is now larger than a file may be"
            return None
        with open(path, "rb") as file:
            raw = file.read(self.max_file_bytes + 1)
        stored = record.content_hash.removesuffix(UNREAD_PAGES)
        if source_hash(self.fingerprint, record.doc_type, raw, format_of(Path(path))) != stored and view.status == "ok":
            view.status = "edited"
            view.note = (
                f"{record.display} was edited since it was ingested: the passage is shown where its text is now, "
                "if it still is; ingest it again to cite what it says now"
            )
        view.file_link = Path(path).as_uri() + (f"#page={view.page}" if record.kind == "pdf" and view.page else "")
        return raw

    def _shown(self, view: View, record: SourceRecord, raw: bytes, meta: Mapping[str, object], as_text: bool) -> None:
        limit = self.config.view_timeout_s
        pixels = int(self.config.view_max_megapixels * 1e6)
        try:
            if record.kind in IMAGES or (record.kind == "pdf" and not as_text):
                page = view.page or 1
                stored = self.kb.page_words(record.source, page)
                words = PageWords.from_bytes(stored) if stored else None
                request = PageRequest(raw, page, view.passage, tuple(view.backing), words, pixels)
                draw = draw_pdf_page if record.kind == "pdf" else draw_image
                view.page_image = self.runner.call(draw, request, timeout_s=limit)
                view.page = view.page_image.page
                if not view.page_image.found and view.passage and view.status == "ok":
                    view.note = "the passage is shown beside the page: it was not found on it" + (
                        " (a scan from before word boxes were kept: ingest it again to highlight it)"
                        if words is None and not view.page_image.found
                        else ""
                    )
                return
            request_text = TextRequest(
                Path(record.source).name, raw, view.passage, tuple(view.backing), view.location, view.page
            )
            view.text = self.runner.call(view_file, request_text, timeout_s=limit)
        except WorkerError as exc:
            view.status, view.note = "unreadable", f"{record.display} could not be shown: {exc}"

    def _stored(self, view: View, record: SourceRecord, chunk_id: str) -> None:
        """A web page: its stored chunks around the cited one, joined (no page is fetched)."""
        ids = record.chunk_ids
        at = ids.index(chunk_id) if chunk_id in ids else 0
        near = ids[max(0, at - NEIGHBOUR_CHUNKS) : at + NEIGHBOUR_CHUNKS + 1]
        texts = {row.chunk_id: row.text for row in self.kb.keywords.rows(near)}
        text = _joined([passage_body(texts[i])[1] for i in near if i in texts])
        view.text = view_text(text, "markdown", TextRequest("", b"", view.passage, tuple(view.backing)))


def _joined(bodies: list[str]) -> str:
    """Neighbouring chunks' texts as one, each one's overlap with the one before left out."""
    out = ""
    for body in bodies:
        overlap = next((n for n in range(min(len(out), len(body), 400), 0, -1) if out.endswith(body[:n])), 0)
        out += ("\n\n" if out and not overlap else "") + body[overlap:]
    return out
