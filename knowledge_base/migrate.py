"""Copy one knowledge base into another (`kbagent migrate`, once per knowledge base): an embedded data dir's records
and keyword index into PostgreSQL, and with them, where asked, its vectors into a Chroma server.

Same write order as an ingest: vectors first, then each batch's records and keyword rows in one transaction.
A record already there with the same hash and chunks is left alone, so a rerun (after an interruption, too)
copies only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from knowledge_base.store import KnowledgeBase, batched

SOURCES_PER_BATCH = 200


@dataclass
class Copied:
    sources: int = 0
    sources_present: int = 0
    keyword_rows: int = 0
    vectors: int = 0
    vectors_present: int = 0


def copy_knowledge_base(
    source: KnowledgeBase,
    target: KnowledgeBase,
    copy_vectors: bool,
    on_progress: Callable[[str, int, int], None] | None = None,
    done: Copied | None = None,
) -> Copied:
    """Make `target` hold `source`'s records and keyword rows (and vectors, with `copy_vectors`); counted into
    `done` (several knowledge bases copied add up)."""
    done = done if done is not None else Copied()
    with source.writing(), target.writing():
        if copy_vectors:
            _copy_vectors(source, target, done, on_progress)
        records = source.records.all()
        present = {r.source: (r.content_hash, r.chunk_ids, r.source_id) for r in target.records.all()}
        for index, batch in enumerate(batched(records, SOURCES_PER_BATCH)):
            todo = [r for r in batch if present.get(r.source) != (r.content_hash, r.chunk_ids, r.source_id)]
            done.sources_present += len(batch) - len(todo)
            rows = source.keywords.rows([i for r in todo for i in r.chunk_ids])
            with target.records.transaction():
                target.keywords.replace_sources([r.source for r in todo], rows)
                target.records.put_many(todo)
            done.sources += len(todo)
            done.keyword_rows += len(rows)
            if on_progress:
                on_progress("sources", min((index + 1) * SOURCES_PER_BATCH, len(records)), len(records))
    return done


def _copy_vectors(
    source: KnowledgeBase, target: KnowledgeBase, done: Copied, on_progress: Callable[[str, int, int], None] | None
) -> None:
    """Every vector the target lacks, with its metadata (and text, where the target keeps texts in Chroma)."""
    total = source.collection.count()
    step = min(source.max_batch, target.max_batch, 1000)
    offset = 0
    while True:
        page = source.collection.get(include=["embeddings", "metadatas", "documents"], limit=step, offset=offset)
        ids = page["ids"]
        if not ids:
            break
        offset += len(ids)
        have = set(target.collection.get(ids=list(ids), include=[])["ids"])
        keep = [n for n, chunk_id in enumerate(ids) if chunk_id not in have]
        done.vectors_present += len(ids) - len(keep)
        if keep:
            texts = None
            if target.texts_in_chroma:
                stored = {row.chunk_id: row.text for row in source.keywords.rows([ids[n] for n in keep])}
                texts = [page["documents"][n] or stored.get(ids[n], "") for n in keep]
            target.collection.add(
                ids=[ids[n] for n in keep],
                embeddings=[page["embeddings"][n] for n in keep],
                metadatas=[page["metadatas"][n] for n in keep],
                documents=texts,
            )
            done.vectors += len(keep)
        if on_progress:
            on_progress("vectors", offset, total)
