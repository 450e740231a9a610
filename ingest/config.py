"""The ingest settings section: how sources are split into chunks and which ones are too large to read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from ingest.text.ocr import OcrMode
from kbagent.sections import Section

if TYPE_CHECKING:
    from ingest.chunking import ChunkingConfig


class IngestConfig(Section):
    chunk_size: int = Field(
        800,
        ge=100,
        le=20000,
        description="Characters per chunk, for knowledge bases made from now on: each keeps the chunking it was "
        "made with, so a change never re-chunks (re-embeds) an existing one.",
    )
    chunk_overlap: int = Field(
        80, ge=0, description="Characters shared by neighbouring chunks (fixed per knowledge base, as chunk_size)."
    )
    max_file_mb: float = Field(100.0, gt=0, description="Larger files are skipped with a message.")
    max_text_mb: float = Field(
        5.0,
        gt=0,
        description="Characters (M) read from one file, its attachments included; the rest is left out with a note.",
    )
    max_pages: int = Field(
        2000, ge=1, le=1_000_000, description="Pages (PDF pages, TIFF frames) read from one file; the rest are noted."
    )
    read_workers: int = Field(
        2,
        ge=0,
        le=64,
        description="Worker processes that read files, each under the memory and time limits below; 0 reads in "
        "the ingest's own process, without them.",
    )
    read_memory_mb: int = Field(
        3072, ge=256, le=1_048_576, description="Address space (RLIMIT_AS) of a worker reading a file."
    )
    read_timeout_s: float = Field(
        60.0, gt=0, le=86_400, description="Longest read of one file (OCR'd pages have their own limits)."
    )
    write_batch_chunks: int = Field(
        1024,
        ge=1,
        le=100_000,
        description="Chunks gathered (from up to 1,024 files) before each store write: "
        "sorted by length, they pad less in each embedding batch, and commits are fewer.",
    )
    watch_debounce_ms: int = Field(
        1600, ge=50, le=60_000, description="Watched folders: wait this long after a change for more before syncing."
    )

    ocr: OcrMode = Field(
        "auto",
        description="OCR for images and PDF pages without a text layer: auto (Tesseract, else RapidOCR), "
        "tesseract, rapidocr, or off (such pages are skipped with a note).",
    )
    ocr_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Longest OCR of one page, after which the page is stopped and noted.",
    )
    ocr_budget_s: float = Field(
        600.0, gt=0, le=86_400, description="OCR seconds per file; pages past it are left unread, with a note."
    )
    ocr_max_megapixels: float = Field(
        50.0, gt=0, le=1000, description="Larger images are refused unread (a decompression bomb costs nothing)."
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IngestConfig:
        if self.chunk_overlap >= self.chunk_size:
            size, overlap = self.chunk_size, self.chunk_overlap
            raise ValueError(f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size})")
        return self

    @property
    def chunking(self) -> ChunkingConfig:
        from ingest.chunking import ChunkingConfig  # the splitters load only when something is chunked

        return ChunkingConfig(self.chunk_size, self.chunk_overlap)
