"""PowerPoint decks: one document per slide, so a citation names the slide (metadata `location` "slide N").

Each slide is a Markdown section: its title as heading, the text of its shapes in reading order (top to bottom,
then left to right, into groups), tables as Markdown tables, and the speaker notes under a "Speaker notes"
heading of their own, so a chunk says whether it is on the slide or only in the notes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from langchain_core.documents import Document

from ingest.loaders.archive import open_zip
from ingest.loaders.errors import LoadError
from ingest.loaders.word import markdown_table
from ingest.text.reading import Reading

if TYPE_CHECKING:
    from pptx.shapes.autoshape import Shape
    from pptx.shapes.base import BaseShape
    from pptx.shapes.graphfrm import GraphicFrame
    from pptx.shapes.group import GroupShape
    from pptx.slide import Slide
    from pptx.text.text import _Paragraph


def load_pptx(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    from pptx import Presentation

    open_zip(raw, "pptx").close()
    try:
        deck = Presentation(io.BytesIO(raw))
        slides = []
        for number, slide in enumerate(deck.slides, 1):
            if reading.full:
                break
            slides.append((number, reading.take(_slide_title(slide)), reading.take(_slide_body(slide))))
        title = (deck.core_properties.title or "").strip()
    except LoadError:
        raise
    except Exception as exc:  # python-pptx raises KeyError, ValueError, lxml errors... for a broken part
        raise LoadError(f"corrupt or not a .pptx file ({type(exc).__name__})") from exc
    title = title or next((t for _, t, _ in slides if t), "") or path.stem
    documents = []
    for number, heading, body in slides:
        if not body and not heading:
            continue
        text = f"# {heading or f'Slide {number}'}\n\n{body or '(no text)'}"
        metadata = {"title": title, "location": f"slide {number}", "format": "markdown"}
        documents.append(Document(page_content=text, metadata=metadata))
    if not documents:
        raise LoadError("no text on any slide")
    return documents


def _slide_title(slide: Slide) -> str:
    shape = slide.shapes.title
    return " ".join(shape.text_frame.text.split()) if shape is not None and shape.has_text_frame else ""


def _slide_body(slide: Slide) -> str:
    title_id = slide.shapes.title.shape_id if slide.shapes.title is not None else None
    shapes = [shape for shape in _in_reading_order(slide.shapes) if shape.shape_id != title_id]
    blocks = [block for shape in shapes for block in _blocks(shape)]
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = _paragraphs(slide.notes_slide.notes_text_frame.paragraphs)
        if notes:
            blocks.append(f"## Speaker notes\n\n{notes}")
    return "\n\n".join(b for b in blocks if b)


def _in_reading_order(shapes: Iterable[BaseShape]) -> list[BaseShape]:
    return sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))


def _blocks(shape: BaseShape) -> Iterator[str]:
    """Only a group has inner shapes, only a graphic frame a table, only an autoshape or placeholder a text frame."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        for inner in _in_reading_order(cast("GroupShape", shape).shapes):
            yield from _blocks(inner)
    elif shape.has_table:
        table = cast("GraphicFrame", shape).table
        rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
        yield markdown_table(rows)
    elif shape.has_text_frame:
        yield _paragraphs(cast("Shape", shape).text_frame.paragraphs)


def _paragraphs(paragraphs: Iterable[_Paragraph]) -> str:
    """Paragraphs as lines; an indented (level > 0) paragraph as a list item under the one before."""
    lines = []
    for paragraph in paragraphs:
        text = " ".join(paragraph.text.replace("\x0b", " ").split())
        if text:
            lines.append(("  " * (paragraph.level - 1) + "- " + text) if paragraph.level else text)
    return "\n".join(lines)
