"""Where OCR found each word on a page: kept at ingest, so a citation of a scanned page can box its words without
running OCR again when it is viewed.

Boxes are stored as fractions of the page (in 1/10,000ths), so they fit any drawing of it, and a page's words
are stored compactly (zlib-compressed JSON, a few KB a page) beside the source's record, not in chunk metadata.
Tesseract gives a box per word (its TSV output), RapidOCR one per line of text: either is a `PageWords`.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNIT = 10_000
"""Box coordinates are in 1/UNIT of the page's width and height."""


@dataclass(frozen=True)
class PageWords:
    """The words OCR read on one page, in reading order, each with its box (x0, y0, x1, y1 in 1/UNIT)."""

    words: tuple[str, ...] = ()
    boxes: tuple[tuple[int, int, int, int], ...] = ()

    def to_bytes(self) -> bytes:
        return zlib.compress(json.dumps([self.words, [c for box in self.boxes for c in box]]).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> PageWords:
        words, flat = json.loads(zlib.decompress(data, bufsize=1 << 16))
        boxes = tuple(tuple(flat[i : i + 4]) for i in range(0, len(flat), 4))
        return cls(tuple(words), boxes)

    def text_and_starts(self) -> tuple[str, list[int]]:
        """The words joined by spaces, and where each starts in that text."""
        starts, at = [], 0
        for word in self.words:
            starts.append(at)
            at += len(word) + 1
        return " ".join(self.words), starts

    def boxes_for(
        self, spans: Sequence[tuple[int, int]], starts: Sequence[int], width: int, height: int
    ) -> list[tuple[int, int, int, int]]:
        """The pixel boxes (on a drawing `width` × `height`) of the words that spans of `text_and_starts`'s
        text touch, in reading order."""
        chosen = sorted(
            {n for start, end in spans for n, at in enumerate(starts) if at < end and at + len(self.words[n]) > start}
        )
        return [
            (
                self.boxes[n][0] * width // UNIT,
                self.boxes[n][1] * height // UNIT,
                -(-self.boxes[n][2] * width // UNIT),
                -(-self.boxes[n][3] * height // UNIT),
            )
            for n in chosen
        ]


def _unit(value: float, whole: float) -> int:
    return max(0, min(UNIT, round(value * UNIT / max(whole, 1))))


def from_tesseract_tsv(tsv: str, width: int, height: int) -> PageWords:
    """Tesseract's TSV (level 5 rows are words; `left top width height` in pixels of a `width` × `height` image)."""
    words: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        try:
            left, top, w, h = (int(row[k]) for k in ("left", "top", "width", "height"))
        except (KeyError, TypeError, ValueError):
            continue
        words.append(text)
        boxes.append((_unit(left, width), _unit(top, height), _unit(left + w, width), _unit(top + h, height)))
    return PageWords(tuple(words), tuple(boxes))


def from_quadrilaterals(
    texts: Sequence[str], quads: Iterable[Iterable[Sequence[float]]] | None, width: int, height: int
) -> PageWords:
    """RapidOCR's lines: a text and its four corner points (pixels) each, as boxes around them."""
    words: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    for text, quad in zip(texts, quads if quads is not None else [], strict=False):
        xs, ys = [float(p[0]) for p in quad], [float(p[1]) for p in quad]
        if text.strip():
            words.append(text.strip())
            boxes.append((_unit(min(xs), width), _unit(min(ys), height), _unit(max(xs), width), _unit(max(ys), height)))
    return PageWords(tuple(words), tuple(boxes))


def page_of(label: str) -> int:
    """The page number of an OCR label: "page 3" → 3; "image" (a single image) → 1."""
    number = label.removeprefix("page ")
    return int(number) if number.isdigit() else 1
