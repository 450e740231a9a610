"""The real embedder, wrapped to count what it embeds: how tests see that a change re-embeds only what changed."""

from __future__ import annotations

from typing import Any

from knowledge_base.embeddings import Embedder


class CountingEmbedder:
    """The real embedder, counting the texts it embeds for the store (queries are not counted)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.embedded = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return self.inner.embed(texts)

    def embed_many(self, texts: list[str], on_embedded: Any = None) -> list[list[float]]:
        """The store's path for an ingest's chunks."""
        self.embedded += len(texts)
        return self.inner.embed_many(texts, on_embedded)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
