"""A cited passage in the text of its document as ingested, for every type that is read as text: Markdown, text,
HTML, Word, e-mail, JSON, CSV, and the parts of slides, sheets, e-books and attachments.

The document's text is made again from the file by the same loader the ingest ran (OCR off: scans are pages, not
text), the part the chunk came from chosen by its place ("slide 3", "sheet Budget", "chapter 2", "attachment
a.pdf"), the passage found in it (`viewer.locate`) and shown as safe HTML (`viewer.html`): a window around it for
a long document, a sheet as a grid of its rows, a slide as its title and shapes (its Markdown rendered).
`view_file` parses the file, so it runs in a worker process (`ingest.workers.ReadWorkers.call`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Literal

from viewer.html import grid_html, markdown_html, text_html, window
from viewer.locate import Located, Span, locate

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from ingest.loaders.sheets import Grid

WINDOW_CHARS = 20_000
"""Characters shown either side of the passage in a long document (a 5 MB file is never sent whole)."""
GRID_ROWS = 40


@dataclass(frozen=True)
class TextRequest:
    """The file's name (only its suffix is used: no path is opened), its bytes, where in it the chunk lies
    (`location`, or `page` for a paged type), the chunk's body and the spans of it that back the answer."""

    name: str
    raw: bytes
    passage: str
    backing: tuple[Span, ...] = ()
    location: str = ""
    page: int | None = None
    max_chars: int = 5 * 2**20
    window_chars: int = WINDOW_CHARS


@dataclass
class TextView:
    """A document (or one part of it) as safe HTML, the passage marked where it was found."""

    html: str
    kind: Literal["markdown", "text", "grid"]
    found: str = ""
    """How the passage was matched (exact, normalised, fuzzy), or "" when it was not."""
    share: float = 0.0
    highlighted_text: str = ""
    """The document's own text under the highlight."""
    location: str = ""
    parts: list[str] = field(default_factory=list)
    """Every part of the document (slides, sheets, chapters, attachments), for going to the next one."""
    shown: tuple[int, int] = (0, 0)
    length: int = 0
    """The window shown (characters of the part's text) and the part's whole length."""
    plain: str = ""
    marks: list[Span] = field(default_factory=list)
    strong: list[Span] = field(default_factory=list)
    """The window's text as plain text, and the passage's and the backing's spans in it (for the terminal)."""


def view_file(request: TextRequest) -> TextView:
    """Load the file as the ingest did, choose the chunk's part, and show the passage in it (in a worker)."""
    from ingest.loaders import load
    from ingest.text.ocr import PageOcr
    from ingest.text.reading import Reading

    reading = Reading(ocr=PageOcr(None), max_chars=request.max_chars)
    documents = load(Path(PurePath(request.name).name), request.raw, reading)
    if not documents:
        return TextView("", "text")
    parts = [_place(d.metadata) for d in documents]
    wanted = f"p. {request.page}" if request.page else request.location
    chosen = parts.index(wanted) if wanted in parts else _containing(documents, request.passage)
    document = documents[chosen]
    view = view_text(document.page_content, str(document.metadata.get("format") or "text"), request, document.metadata)
    view.location, view.parts = parts[chosen], [p for p in parts if p]
    return view


def _place(meta: Mapping[str, object]) -> str:
    return f"p. {meta['page']}" if meta.get("page") else str(meta.get("location") or "")


def _containing(documents: Sequence[Document], passage: str) -> int:
    """The part whose text holds the passage best (a chunk from before its place was recorded)."""
    scored = [(found.share if (found := locate(passage, d.page_content)) else 0.0, -n) for n, d in enumerate(documents)]
    return -max(scored)[1]


def view_text(text: str, text_format: str, request: TextRequest, meta: Mapping[str, object] | None = None) -> TextView:
    """The passage shown in `text` (a loader's output, or a web page's stored text)."""
    found = locate(request.passage, text)
    grid = (meta or {}).get("grid")
    if grid is not None:
        from ingest.loaders.sheets import Grid  # a sheet's document holds one (the ingest's own class)

        if isinstance(grid, Grid):
            return _grid_view(text, grid, found, request)
    markdown = text_format == "markdown"
    passage_spans = found.spans if found else []
    backing = [s for span in request.backing for s in found.to_document(*span)] if found else []
    start, end = (found.start, found.end) if found else (0, 0)
    low, high, prefix = window(text, start, end, request.window_chars, markdown)
    shift = len(prefix) - low
    moved = [(s + shift, e + shift) for s, e in _within(passage_spans, low, high)]
    moved_backing = [(s + shift, e + shift) for s, e in _within(backing, low, high)]
    shown = prefix + text[low:high]
    body = markdown_html(shown, moved, moved_backing) if markdown else text_html(shown, moved, moved_backing)
    return TextView(
        body,
        "markdown" if markdown else "text",
        found.how if found else "",
        found.share if found else 0.0,
        _text_under(text, found),
        shown=(low, high),
        length=len(text),
        plain=text[low:high],
        marks=[(s - low, e - low) for s, e in _within(passage_spans, low, high)],
        strong=[(s - low, e - low) for s, e in _within(backing, low, high)],
    )


def _within(spans: list[Span], low: int, high: int) -> list[Span]:
    return [(max(s, low), min(e, high)) for s, e in spans if e > low and s < high]


def _text_under(text: str, found: Located | None) -> str:
    return " ".join(" ".join(text[s:e].split()) for s, e in found.spans) if found else ""


def _grid_view(text: str, grid: Grid, found: Located | None, request: TextRequest) -> TextView:
    """A sheet: its rows as a table, those the passage spans marked, those that back the answer more strongly."""
    lines = _line_starts(text)
    name, _, rest = text.partition("\n")
    name = name.removeprefix("# ").strip()
    first = text[: len(text) - len(rest.lstrip("\n"))].count("\n")  # the first row's line: past the name, blanks

    def rows_of(spans: list[Span]) -> set[int]:
        return {grid.row_of_line(n - first) for s, e in spans for n in _lines_between(lines, s, e) if n >= first}

    passage = rows_of(found.spans) if found else set()
    strong = rows_of([s for span in request.backing for s in found.to_document(*span)]) if found else set()
    middle = min(passage) if passage else 0
    first = max(0, middle - GRID_ROWS // 2)
    chosen = [n for n in range(first, min(len(grid.rows), first + GRID_ROWS + len(passage))) if n != grid.header]
    body = grid_html(name, grid.rows, grid.header, chosen, passage, strong)
    return TextView(
        body,
        "grid",
        found.how if found else "",
        found.share if found else 0.0,
        _text_under(text, found),
        shown=(first, chosen[-1] + 1 if chosen else first),
        length=len(grid.rows),
    )


def _line_starts(text: str) -> list[int]:
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    return starts


def _lines_between(starts: list[int], start: int, end: int) -> range:
    import bisect

    return range(bisect.bisect_right(starts, start) - 1, bisect.bisect_left(starts, end))
