"""What reading one source file may cost: a running character budget (shared with its attachments), a cap on
its pages, and the OCR of them. Loaders take from it while they read, so a cap stops the reading itself rather
than a check after a loader returns (by then a small file may have grown to gigabytes of text). What a cap left
unread is one note per cap; a file cut by a cap is stored as read and not read again until its bytes change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.text.ocr import PageOcr

MAX_CHARS = 5 * 2**20
MAX_PAGES = 2000


@dataclass
class Reading:
    """One file's allowances and what was cut by them. Loaders call `take` on each piece of text they produce
    and stop once `full`; `pages` says how many of a file's pages (or frames) to read."""

    ocr: PageOcr = field(default_factory=PageOcr)
    max_chars: int = MAX_CHARS
    max_pages: int = MAX_PAGES
    chars: int = 0
    """Characters taken so far, attachments included."""
    cuts: list[str] = field(default_factory=list)
    """One line per cap that left something unread (final: a later read would be cut the same way)."""
    warnings: list[str] = field(default_factory=list)
    """What the libraries warned about while reading (for the log, not the user's terminal)."""

    @property
    def full(self) -> bool:
        """The character budget is spent: read no further."""
        return self.chars >= self.max_chars

    @property
    def left(self) -> int:
        return max(self.max_chars - self.chars, 0)

    def take(self, text: str) -> str:
        """`text`, or as much of it as the budget still allows (then the file's note says it was cut)."""
        if len(text) <= self.left:
            self.chars += len(text)
            return text
        part = text[: self.left]
        self.chars = self.max_chars
        self.cut(f"text cut at {self.max_chars / 2**20:.3g} M characters, the limit per file (KBAGENT_MAX_TEXT_MB)")
        return part

    def pages(self, total: int, what: str = "pages") -> int:
        """How many of `total` pages to read; the rest are noted."""
        if total > self.max_pages:
            self.cut(f"{what} {self.max_pages + 1}–{total} not read: the limit is {self.max_pages} (KBAGENT_MAX_PAGES)")
        return min(total, self.max_pages)

    def cut(self, note: str) -> None:
        if note not in self.cuts:
            self.cuts.append(note)

    @property
    def notes(self) -> list[str]:
        """What was left unread, caps first, then the OCR's own notes."""
        return self.cuts + self.ocr.notes
