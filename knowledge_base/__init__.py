"""Stores chunks in Chroma and retrieves them; `KnowledgeBase` is the only entry point others use.

Its names load on first use: the settings read `knowledge_base.config`, which runs this file, and a start that
imported the store here would import Chroma before it needs it (a one-shot `kbagent ask` loads its chat model
meanwhile)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbagent import lazy

if TYPE_CHECKING:
    from knowledge_base.records import SourceRecord
    from knowledge_base.store import ChunkedSource, KnowledgeBase, WriteResult

__all__ = ["ChunkedSource", "KnowledgeBase", "SourceRecord", "WriteResult"]

__getattr__ = lazy.exports(
    __name__,
    {
        "ChunkedSource": "knowledge_base.store",
        "KnowledgeBase": "knowledge_base.store",
        "SourceRecord": "knowledge_base.records",
        "WriteResult": "knowledge_base.store",
    },
)
