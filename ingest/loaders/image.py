"""Image files (PNG, JPEG, TIFF), read by OCR (`ingest.text.ocr`): one document per frame; the frames of a
multi-page TIFF keep their page numbers for citations."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from ingest.text.ocr import image_frames
from ingest.text.reading import Reading


def load_image(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    ocr = reading.ocr
    frames = image_frames(raw, ocr.max_pixels)
    paged = len(frames) > 1
    frames = frames[: reading.pages(len(frames))]
    ocr.plan(len(frames))
    documents = []
    for number, frame in enumerate(frames, start=1):
        if reading.full:
            break
        text = reading.take(ocr.read(f"page {number}" if paged else "image", frame))
        if text:
            metadata: dict[str, object] = {"title": path.stem, "format": "text"}
            documents.append(Document(page_content=text, metadata=metadata | ({"page": number} if paged else {})))
    return documents
