"""What a store holds, read the way search reads it: ids from Chroma, texts from wherever they live."""

from __future__ import annotations

from typing import Any

from knowledge_base import KnowledgeBase


def stored_texts(kb: KnowledgeBase, where: dict[str, Any] | None = None) -> list[str]:
    """Sorted texts of the chunks Chroma holds (for `where`); every one of them must have its text."""
    got = kb.collection.get(where=where, include=["documents"])
    in_chroma = dict(zip(got["ids"], got["documents"], strict=True))
    texts = {row.chunk_id: row.text for row in kb.keywords.rows(got["ids"])}
    assert texts.keys() == in_chroma.keys(), "a vector without its text, or a text without its vector"
    if kb.texts_in_chroma:
        assert in_chroma == texts
    else:
        assert set(in_chroma.values()) <= {None}
    return sorted(texts.values())


def keyword_ids(kb: KnowledgeBase) -> list[str]:
    """Sorted ids of every chunk the keyword index holds, in either backend."""
    from knowledge_base.postgres import PostgresKeywordIndex

    if isinstance(kb.keywords, PostgresKeywordIndex):
        with kb.keywords.db.connection() as conn:
            return sorted(row[0] for row in conn.execute("SELECT chunk_id FROM chunks"))
    return sorted(row[0] for row in kb.records.connection.execute("SELECT chunk_id FROM chunk_text"))  # type: ignore[attr-defined]
