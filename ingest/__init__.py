"""Turns files and web pages into chunks with metadata and hands them to the knowledge base."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbagent import lazy

if TYPE_CHECKING:
    from ingest.chunking import Chunker, ChunkingConfig
    from ingest.config import IngestConfig
    from ingest.loaders import LoadError
    from ingest.pipeline import Ingestor, TextSource
    from ingest.report import IngestReport, Outcome, Progress
    from knowledge_base import KnowledgeBase

__getattr__ = lazy.exports(
    __name__,
    {
        "Chunker": "ingest.chunking",
        "ChunkingConfig": "ingest.chunking",
        "IngestConfig": "ingest.config",
        "LoadError": "ingest.loaders",
        "Ingestor": "ingest.pipeline",
        "IngestReport": "ingest.report",
        "Outcome": "ingest.report",
        "Progress": "ingest.report",
        "TextSource": "ingest.pipeline",
    },
)


def build_ingestor(config: IngestConfig, kb: KnowledgeBase) -> Ingestor:
    """An ingestor writing into `kb` with the chunking and size limits of `config`."""
    import functools

    from ingest.chunking import Chunker
    from ingest.pipeline import Ingestor
    from ingest.text.ocr import OcrReader
    from ingest.workers import InProcess, Limits, ReadWorkers

    limits = Limits(config.read_memory_mb, config.read_timeout_s)
    return Ingestor(
        kb,
        Chunker(config.chunking),
        max_file_bytes=int(config.max_file_mb * 2**20),
        max_text_chars=int(config.max_text_mb * 2**20),
        write_batch_chunks=config.write_batch_chunks,
        ocr=OcrReader(config.ocr, config.ocr_timeout_s, int(config.ocr_max_megapixels * 1e6), config.ocr_budget_s),
        max_pages=config.max_pages,
        reader=functools.partial(ReadWorkers, size=config.read_workers, limits=limits)
        if config.read_workers
        else InProcess,
    )


__all__ = [
    "Chunker",
    "ChunkingConfig",
    "IngestConfig",
    "IngestReport",
    "Ingestor",
    "LoadError",
    "Outcome",
    "Progress",
    "TextSource",
    "build_ingestor",
]
