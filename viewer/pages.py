"""A cited page drawn: a PDF page rendered by PDFium (or an image file's frame) as a PNG, with the cited passage's
words highlighted and the words that back the answer marked more strongly.

Where the words are comes from PDFium's own character boxes for a page with a text layer (`get_text_range` and
`get_charbox`, one box per character, matched to the chunk's text by `viewer.locate`), and from the OCR word
boxes kept at ingest for a scanned page or an image (`ingest.text.words`). A scan ingested before those were kept
is drawn without a highlight, the passage shown beside it by the caller.

These functions run in a worker process (`ingest.workers.ReadWorkers.call`), under its memory limit and kill
timer: a hostile page can cost a worker, never the caller. Every page is drawn within `max_pixels` and
`max_side`, whatever size it claims.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal

from ingest.text.words import PageWords
from viewer.locate import Located, Span, locate

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in the PNG's pixels."""
RENDER_DPI = 144
PASSAGE_FILL = (255, 214, 0, 90)
BACKING_FILL = (255, 120, 0, 130)


@dataclass(frozen=True)
class PageRequest:
    """What to draw: page `page` (1-based) of the file's bytes, the chunk's body (`locate.passage_body`) and the
    spans of it that back the answer."""

    raw: bytes
    page: int = 1
    passage: str = ""
    backing: tuple[Span, ...] = ()
    words: PageWords | None = None
    """The page's OCR words, kept at ingest, or None."""
    max_pixels: int = 8_000_000
    max_side: int = 2400


@dataclass
class PageImage:
    """A drawn page: its PNG, where the passage and its backing words are on it, and its neighbours."""

    page: int
    pages: int
    png: bytes
    width: int
    height: int
    passage_boxes: list[Box] = field(default_factory=list)
    backing_boxes: list[Box] = field(default_factory=list)
    highlighted_text: str = ""
    """The page's own text under the highlight (PDFium's or the OCR's): what a reader sees marked."""
    found: Literal["text", "ocr", ""] = ""
    """Where the highlight came from: the text layer, OCR word boxes, or nowhere (not found, or an old scan)."""
    how: str = ""
    """How the passage was matched: exact, normalised or fuzzy (`viewer.locate`)."""

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def scale_for(width: float, height: float, dpi: float, max_pixels: int, max_side: int) -> float:
    """The render scale (pixels per point) for a page of `width` × `height` points: `dpi`, less where the page
    would pass `max_side` or `max_pixels`."""
    width, height = max(width, 1.0), max(height, 1.0)
    return min(dpi / 72, max_side / max(width, height), (max_pixels / (width * height)) ** 0.5)


def draw_pdf_page(request: PageRequest) -> PageImage:
    """Page `request.page` of a PDF, drawn with its highlights (run in a worker)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(request.raw)
    try:
        pages = len(document)
        number = min(max(request.page, 1), pages)
        page = document[number - 1]
        width, height = page.get_size()
        scale = scale_for(width, height, RENDER_DPI, request.max_pixels, request.max_side)
        image = page.render(scale=scale, may_draw_forms=False).to_pil()
        left, _, _, top = page.get_cropbox()
        result = PageImage(number, pages, b"", image.width, image.height)
        if request.words is not None and request.words.words:
            _mark_words(result, request, image.width, image.height)
        elif request.passage:
            _mark_text(result, request, page.get_textpage(), scale, (left, top))
        result.png = _png(image, result.passage_boxes, result.backing_boxes)
        return result
    finally:
        document.close()


def draw_image(request: PageRequest) -> PageImage:
    """Frame `request.page` of an image file (a TIFF may hold many), scaled down, its OCR'd words boxed."""
    from ingest.text.ocr import image_frames

    frames = image_frames(request.raw, request.max_pixels * 8)
    number = min(max(request.page, 1), len(frames))
    image = frames[number - 1]()
    image.thumbnail((request.max_side, request.max_side))
    result = PageImage(number, len(frames), b"", image.width, image.height)
    if request.words is not None and request.words.words:
        _mark_words(result, request, image.width, image.height)
    result.png = _png(image, result.passage_boxes, result.backing_boxes)
    return result


def _mark_text(
    result: PageImage, request: PageRequest, textpage: object, scale: float, origin: tuple[float, float]
) -> None:
    text = textpage.get_text_range()  # type: ignore[attr-defined]
    found = locate(request.passage, text)
    if found is None:
        return
    boxes = [_char_box(textpage, i, scale, origin) for start, end in found.spans for i in range(start, end)]
    result.passage_boxes = _lines([b for b in boxes if b is not None])
    backing = [s for span in request.backing for s in found.to_document(*span)]
    backing_boxes = [_char_box(textpage, i, scale, origin) for start, end in backing for i in range(start, end)]
    result.backing_boxes = _lines([b for b in backing_boxes if b is not None])
    result.highlighted_text = " ".join(" ".join(text[s:e].split()) for s, e in found.spans)
    result.found, result.how = "text", found.how


def _char_box(textpage: object, index: int, scale: float, origin: tuple[float, float]) -> Box | None:
    left, bottom, right, top = textpage.get_charbox(index)  # type: ignore[attr-defined]  # points, y up
    if right - left <= 0 or top - bottom <= 0:
        return None  # a generated character (a line break PDFium adds) has no box
    x0, y0 = origin
    return (
        int((left - x0) * scale),
        int((y0 - top) * scale),
        int((right - x0) * scale) + 1,
        int((y0 - bottom) * scale) + 1,
    )


def _mark_words(result: PageImage, request: PageRequest, width: int, height: int) -> None:
    assert request.words is not None
    text, starts = request.words.text_and_starts()
    found = locate(request.passage, text)
    if found is None:
        return
    boxes = request.words.boxes_for(found.spans, starts, width, height)
    result.passage_boxes = _lines(boxes)
    backing = [s for span in request.backing for s in found.to_document(*span)]
    result.backing_boxes = _lines(request.words.boxes_for(backing, starts, width, height))
    result.highlighted_text = " ".join(" ".join(text[s:e].split()) for s, e in found.spans)
    result.found, result.how = "ocr", found.how


def _lines(boxes: list[Box]) -> list[Box]:
    """Character or word boxes joined into one rectangle per line: consecutive boxes that overlap vertically."""
    lines: list[Box] = []
    for box in boxes:
        if lines:
            left, top, right, bottom = lines[-1]
            overlap = min(bottom, box[3]) - max(top, box[1])
            if overlap > 0.5 * min(bottom - top, box[3] - box[1]) and box[0] >= left - 4:
                lines[-1] = (min(left, box[0]), min(top, box[1]), max(right, box[2]), max(bottom, box[3]))
                continue
        lines.append(box)
    return lines


def _png(image: object, passage: list[Box], backing: list[Box]) -> bytes:
    from PIL import Image, ImageDraw

    assert isinstance(image, Image.Image)
    base = image.convert("RGBA")
    if passage or backing:
        overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for box in passage:
            draw.rectangle(box, fill=PASSAGE_FILL)
        for box in backing:
            draw.rectangle(box, fill=BACKING_FILL, outline=(200, 80, 0, 255), width=2)
        base = Image.alpha_composite(base, overlay)
    out = io.BytesIO()
    base.convert("RGB").save(out, "PNG", compress_level=1)  # level 1: a third of the time of the default
    return out.getvalue()


__all__ = ["Box", "Located", "PageImage", "PageRequest", "draw_image", "draw_pdf_page", "scale_for"]
