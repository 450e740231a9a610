"""Turns files and web pages into chunks with metadata and hands them to the knowledge base."""

from __future__ import annotations

from typing import Any

from ingest.chunking import Chunker, ChunkingConfig
from ingest.loaders import LoadError
from ingest.pipeline import Ingestor, IngestReport, Outcome, Progress, TextSource
from knowledge_base import KnowledgeBase


def build_ingestor(settings: Any, kb: KnowledgeBase) -> Ingestor:
    config = ChunkingConfig(settings.chunk_size, settings.chunk_overlap)
    return Ingestor(
        kb,
        Chunker(config),
        max_file_bytes=int(settings.max_file_mb * 2**20),
        max_text_chars=int(settings.max_text_mb * 2**20),
        write_batch_chunks=settings.write_batch_chunks,
    )


__all__ = [
    "Chunker",
    "ChunkingConfig",
    "IngestReport",
    "Ingestor",
    "LoadError",
    "Outcome",
    "Progress",
    "TextSource",
    "build_ingestor",
]
