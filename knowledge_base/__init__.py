"""Stores chunks in Chroma and retrieves them; `KnowledgeBase` is the only entry point others use."""

from knowledge_base.records import SourceRecord
from knowledge_base.store import ChunkedSource, KnowledgeBase, WriteResult

__all__ = ["ChunkedSource", "KnowledgeBase", "SourceRecord", "WriteResult"]
