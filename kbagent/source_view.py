"""`kbagent show`: a cited passage in the terminal, in its context: a few lines before and after, the passage in
bold, the words that back an answer underlined; a PDF's page number and a file://…#page=N link to open it."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from viewer.address import parse_address
from viewer.locate import Span
from viewer.service import View

CONTEXT_LINES = 3


def parse_citation(citation: str) -> tuple[str, str, str]:
    """(knowledge base or "", source id, chunk id or ""): `SOURCE_ID`, `SOURCE_ID:CHUNK_ID`, or an address
    (`/source/<knowledge base>/<source id>?chunk=<chunk id>`, absolute or not)."""
    if "/source/" in citation:
        address = parse_address(citation[citation.index("/source/") :])
        if address is None:
            return "", "", ""
        return address.knowledge_base, address.source_id, address.chunk_id
    source_id, _, chunk_id = citation.strip().partition(":")
    return "", source_id, chunk_id


def show(console: Console, view: View) -> None:
    """The view as lines: what and where, the one-line note, then the passage in context."""
    where = f" ({view.location})" if view.location else ""
    console.print(f"[bold]{escape(view.title or view.source)}[/] — {escape(view.source)}{escape(where)}")
    if view.note:
        console.print(f"[yellow]{escape(view.note)}[/]")
    text = view.text
    if text is not None and text.plain and text.marks:
        console.print(context(text.plain, text.marks, text.strong))
    else:
        console.print(Text(view.passage, style="bold"))
    if view.file_link:
        page = f"page {view.page}: " if view.page and view.kind == "pdf" else ""
        console.print(f"{page}{escape(view.file_link)}", markup=True, soft_wrap=True)
    elif view.url:
        console.print(escape(view.url))


def context(plain: str, marks: list[Span], strong: list[Span], lines: int = CONTEXT_LINES) -> Text:
    """The lines of `plain` from `lines` before the first mark to `lines` after the last, the marks in bold, the
    strong spans also underlined."""
    start, end = marks[0][0], marks[-1][1]
    low = start
    for _ in range(lines + 1):
        low = plain.rfind("\n", 0, max(low - 1, 0)) + 1 if low > 0 else 0
    high = end
    for _ in range(lines + 1):
        found = plain.find("\n", high + 1)
        high = found if found >= 0 else len(plain)
    out = Text(plain[low:high])
    for s, e in marks:
        out.stylize("bold", max(s - low, 0), e - low)
    for s, e in strong:
        out.stylize("bold underline", max(s - low, 0), e - low)
    return out
