"""Where a cited passage lies in its document's text: character spans, found exactly where they can be, else by
fuzzy alignment.

A chunk is its context header ("Title › Section"), a blank line, then a piece of the text its loader made. That
piece is usually found as it is (`str.find`). Where it is not, both sides differ in ways that carry no meaning:
PDFium and pypdf space and break a page's lines differently and one joins a hyphenated word the other keeps,
ligatures ("ﬁ"), case, punctuation. So both sides are *projected*: only their letters and digits, case-folded,
each projected character remembering where it came from. The projected piece is then looked up exactly, and
where that fails too (OCR noise, a word one extractor lost), aligned with difflib's SequenceMatcher inside a
window that anchors (exact runs of the piece) point to; runs shorter than MIN_BLOCK are noise and dropped. The
result keeps its matched blocks, so any span of the passage (the words that back a sentence) maps into the
document too. Written with difflib (standard library): rapidfuzz's alignment gives one span, not the blocks.
"""

from __future__ import annotations

import bisect
import difflib
import re
from array import array
from dataclasses import dataclass, field
from typing import Literal

RUN = re.compile(r"[^\W_]+")
MIN_BLOCK = 4
"""Projected characters a matched block must hold to count: shorter ones are chance ("the", "ing")."""
MIN_SHARE = 0.6
"""Share of the passage's projected characters the alignment must match for the passage to count as found."""
ANCHOR = 24
MAX_GAP = 12
"""Document characters between two matched blocks that still make one highlighted span (a line break, a
hyphen, a footnote mark); a longer gap (a page header between lines) splits the span."""

How = Literal["exact", "normalised", "fuzzy"]
Span = tuple[int, int]


def passage_body(chunk_text: str) -> tuple[int, str]:
    """(offset, body): the chunk's text less its context header line and the blank line after it."""
    header, sep, body = chunk_text.partition("\n\n")
    if not sep or "\n" in header:
        return 0, chunk_text
    return len(header) + 2, body


class Projection:
    """A text's letters and digits, case-folded, with where each came from (runs, so 5 MB stays cheap)."""

    def __init__(self, text: str, start: int = 0, end: int | None = None) -> None:
        pieces: list[str] = []
        self.proj_starts = array("q")
        self.orig_starts = array("q")
        self.single = bytearray()  # 1 where a run is one original character that folded to several
        at = 0
        for match in RUN.finditer(text, start, len(text) if end is None else end):
            run = match.group(0)
            folded = run.casefold()
            if len(folded) == len(run):
                self._add(at, match.start(), 0)
                pieces.append(folded)
                at += len(folded)
                continue
            for offset, char in enumerate(run):  # "ß" → "ss", "ﬁ" → "fi": each character a run of its own
                self._add(at, match.start() + offset, 1)
                pieces.append(char.casefold())
                at += len(pieces[-1])
        self.text = "".join(pieces)

    def _add(self, proj: int, orig: int, single: int) -> None:
        self.proj_starts.append(proj)
        self.orig_starts.append(orig)
        self.single.append(single)

    def origin(self, index: int) -> int:
        """The original offset of projected character `index`."""
        run = bisect.bisect_right(self.proj_starts, index) - 1
        return self.orig_starts[run] + (0 if self.single[run] else index - self.proj_starts[run])

    def span(self, start: int, end: int) -> Span:
        """The original span of projected characters [start, end)."""
        return self.origin(start), self.origin(end - 1) + 1

    def index(self, orig: int) -> int:
        """The first projected character at or after original offset `orig`."""
        run = bisect.bisect_right(self.orig_starts, orig) - 1
        if run < 0:
            return 0
        if self.single[run]:
            return self.proj_starts[run] + (orig > self.orig_starts[run]) * (self._run_len(run))
        return self.proj_starts[run] + min(orig - self.orig_starts[run], self._run_len(run))

    def _run_len(self, run: int) -> int:
        following = self.proj_starts[run + 1] if run + 1 < len(self.proj_starts) else len(self.text)
        return following - self.proj_starts[run]


@dataclass
class Located:
    """A passage found in a document: `spans` to highlight, in the document's characters."""

    spans: list[Span]
    how: How
    share: float
    """Of the passage's letters and digits, the share found (1.0 unless fuzzy)."""
    blocks: list[tuple[int, int, int]] = field(default_factory=list, repr=False)
    """(passage offset, document offset, length) of each run matched, in original characters when `how` is
    exact, else in projected ones (with the projections below)."""
    passage_projection: Projection | None = field(default=None, repr=False)
    document_projection: Projection | None = field(default=None, repr=False)

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]

    def to_document(self, start: int, end: int) -> list[Span]:
        """The document spans that passage characters [start, end) (offsets in the passage as located) fell on."""
        if self.how == "exact":
            offset = self.blocks[0][1] - self.blocks[0][0]
            return [(start + offset, end + offset)]
        passage, document = self.passage_projection, self.document_projection
        assert passage is not None and document is not None
        p_start, p_end = passage.index(start), passage.index(end)
        found: list[Span] = []
        for p, d, length in self.blocks:
            lo, hi = max(p, p_start), min(p + length, p_end)
            if lo < hi:
                found.append(document.span(d + lo - p, d + hi - p))
        return _merged(found, MAX_GAP)


def locate(passage: str, text: str, min_share: float = MIN_SHARE) -> Located | None:
    """Where `passage` (a chunk's body: `passage_body`) lies in `text`, or None when under `min_share` of it
    can be matched."""
    passage = passage.strip()
    if not passage:
        return None
    at = text.find(passage)
    if at >= 0:
        return Located([(at, at + len(passage))], "exact", 1.0, [(0, at, len(passage))])
    wanted = Projection(passage)
    if len(wanted.text) < MIN_BLOCK:
        return None
    window = _window(passage, wanted.text, text)
    if window is None:
        return None
    document = Projection(text, *window)
    at = document.text.find(wanted.text)
    if at >= 0:
        block = (0, at, len(wanted.text))
        return Located([document.span(at, at + len(wanted.text))], "normalised", 1.0, [block], wanted, document)
    return _aligned(wanted, document, min_share)


def _window(passage: str, projected: str, text: str) -> Span | None:
    """The part of `text` to project: around where pieces of the passage occur as they are (a line, a long run
    of words), else all of it. None when nothing of the passage occurs at all."""
    hits = []
    for line in sorted({line.strip() for line in passage.splitlines()}, key=len, reverse=True)[:8]:
        if len(line) >= ANCHOR and (at := text.find(line)) >= 0:
            hits.append(at - passage.find(line))
    if hits:
        middle = sorted(hits)[len(hits) // 2]
        return max(0, middle - len(passage)), min(len(text), middle + 2 * len(passage))
    if len(text) <= 50 * max(len(passage), 2000):
        return 0, len(text)
    return _projected_window(projected, text)


def _projected_window(projected: str, text: str) -> Span | None:
    """A long text none of whose lines are the passage's: projected pieces of the passage looked up in the
    projected text (built once; about a second for 5 MB)."""
    document = Projection(text)
    hits = []
    for offset in range(0, max(len(projected) - ANCHOR, 1), max(len(projected) // 8, 1)):
        at = document.text.find(projected[offset : offset + ANCHOR])
        if at >= 0:
            hits.append(at - offset)
    if not hits:
        return None
    middle = sorted(hits)[len(hits) // 2]
    start, end = document.span(max(0, middle - len(projected)), min(len(document.text), middle + 2 * len(projected)))
    return start, end


def _aligned(wanted: Projection, document: Projection, min_share: float) -> Located | None:
    matcher = difflib.SequenceMatcher(None, wanted.text, document.text, autojunk=False)
    blocks = [(a, b, size) for a, b, size in matcher.get_matching_blocks() if size >= MIN_BLOCK]
    share = sum(size for _, _, size in blocks) / len(wanted.text)
    if share < min_share:
        return None
    spans = _merged([document.span(b, b + size) for _, b, size in blocks], MAX_GAP)
    return Located(spans, "fuzzy", share, blocks, wanted, document)


def _merged(spans: list[Span], gap: int) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
