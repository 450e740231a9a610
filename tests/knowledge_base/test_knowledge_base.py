"""The store against the embedded Chroma and a real `chroma run` server: write, search, replace, remove."""

from __future__ import annotations

from langchain_core.documents import Document

from knowledge_base import ChunkedSource, KnowledgeBase
from tests.support.stored import stored_texts


def _source(name: str, texts: list[str], doc_type: str = "notes", version: str = "1") -> ChunkedSource:
    return ChunkedSource(
        source=f"/docs/{name}",
        content_hash=f"{name}-{version}",
        chunks=[Document(t, metadata={"page": i + 1}) for i, t in enumerate(texts)],
        title=name.title(),
        doc_type=doc_type,
        kind="md",
    )


def _ids(kb: KnowledgeBase) -> set[str]:
    return set(kb.collection.get(include=[])["ids"])


def test_write_and_search_with_metadata(kb: KnowledgeBase) -> None:
    kb.write(
        [
            _source("bees", ["Honey bees dance to show where flowers are.", "The queen lays eggs."]),
            _source("cars", ["Diesel engines ignite fuel by compression."], doc_type="mech"),
        ]
    )
    [top, *_] = kb.search("how do bees communicate the location of food", k=3)
    assert top.metadata["source"] == "/docs/bees"
    assert top.metadata["title"] == "Bees" and top.metadata["doc_type"] == "notes" and top.metadata["page"] == 1
    assert 0 < top.metadata["score"] <= 1 and top.metadata["chunk_id"] == top.id
    only_mech = kb.search("bees", k=5, filters={"doc_type": "mech"})
    assert [d.metadata["source"] for d in only_mech] == ["/docs/cars"]


def test_rewrite_embeds_only_new_chunks_and_drops_old(kb: KnowledgeBase) -> None:
    first = kb.write([_source("a", ["alpha one", "alpha two", "alpha three"])])
    assert (first.embedded, first.reused, first.deleted) == (3, 0, 0)
    second = kb.write([_source("a", ["alpha one", "alpha THREE changed"], version="2")])
    assert (second.embedded, second.reused, second.deleted) == (1, 1, 2)
    assert stored_texts(kb) == ["alpha THREE changed", "alpha one"]
    assert kb.sources()[0].chunks == 2 and kb.sources()[0].content_hash == "a-2"


def test_duplicate_chunks_get_distinct_ids(kb: KnowledgeBase) -> None:
    kb.write([_source("dup", ["same text", "same text", "other"])])
    assert len(_ids(kb)) == 3


def test_remove_deletes_chunks_and_record(kb: KnowledgeBase) -> None:
    kb.write([_source("keep", ["kept text"]), _source("drop", ["dropped text"])])
    assert kb.remove(["/docs/drop"]) == ["/docs/drop"]
    assert [r.source for r in kb.sources()] == ["/docs/keep"]
    assert {m["source"] for m in kb.collection.get(include=["metadatas"])["metadatas"]} == {"/docs/keep"}


def test_orphans_from_an_interrupted_write_are_cleaned(kb: KnowledgeBase) -> None:
    """Chunks in Chroma without a record (a crash before the record was written) vanish on the next write."""
    kb.write([_source("a", ["old text"])])
    kb.records.delete_many(["/docs/a"])  # as if the record write had been lost
    kb.write([_source("a", ["new text"], version="2")])
    assert stored_texts(kb) == ["new text"]


def test_stats(kb: KnowledgeBase) -> None:
    kb.write([_source("a", ["x one", "x two"]), _source("b", ["y"], doc_type="other")])
    stats = kb.stats()
    assert stats["sources"] == 2 and stats["chunks"] == 3 == stats["recorded_chunks"]
    assert stats["doc_types"] == {"notes": 1, "other": 1}


def test_empty_store_and_empty_query(kb: KnowledgeBase) -> None:
    assert kb.search("anything") == []
    assert kb.search("   ") == []
