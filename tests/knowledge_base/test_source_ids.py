"""Stable source ids: given at the first ingest, kept when a file is edited, moved (a watcher's batch, `--sync`)
or read again; records from before ids get theirs in place (nothing embedded again), and an upgrade cut short
leaves the store as it was. Real Chroma, the real embedder, SQLite and a real PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest import IngestConfig, build_ingestor
from ingest.watch import FolderWatcher
from kbagent.components import open_knowledge_base
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase
from knowledge_base.backend import Place
from knowledge_base.embeddings import Embedder
from knowledge_base.records import SourceRecord, SourceRecords


def _note(path: Path, title: str, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    return path


def _id(kb: KnowledgeBase, path: Path) -> str:
    record = kb.records.get(str(path))
    assert record is not None, f"{path} has no record"
    return record.source_id


def test_an_id_survives_an_edit_and_a_move_and_finds_its_record(tmp_path: Path, kb: KnowledgeBase) -> None:
    folder = tmp_path / "notes"
    tomatoes = _note(folder / "garden" / "tomatoes.md", "Tomatoes", "Water the tomato plants with 2 litres.")
    beans = _note(folder / "garden" / "beans.md", "Beans", "Runner beans climb poles three metres tall.")
    watcher = FolderWatcher(build_ingestor(IngestConfig(), kb), [folder])
    watcher.sync(folder)
    first, other = _id(kb, tomatoes), _id(kb, beans)
    assert len(first) == 16 and first != other

    _note(tomatoes, "Tomatoes", "Water the tomato plants with 3 litres each evening.")  # edited
    watcher.apply([tomatoes])
    assert _id(kb, tomatoes) == first

    moved = folder / "kitchen" / "tomato-care.md"  # moved to another subfolder
    moved.parent.mkdir()
    tomatoes.rename(moved)
    (result,) = watcher.apply([tomatoes, moved])
    assert result.report is not None and result.report.counts["moved"] == 1
    assert _id(kb, moved) == first and kb.records.get(str(tomatoes)) is None
    found = kb.source_by_id(first)
    assert found is not None and found.source == str(moved)
    assert kb.source_by_id("0" * 16) is None and kb.source_by_id("") is None
    assert {r.source_id for r in kb.sources()} == {first, other}
    assert kb.collection.get(where={"source": str(tomatoes)}, include=[])["ids"] == []  # the old chunks went


def test_ingest_sync_moves_keep_the_id_and_a_new_file_gets_a_new_one(
    tmp_path: Path, embedded_kb: KnowledgeBase
) -> None:
    folder = tmp_path / "notes"
    old = _note(folder / "valves.md", "Valves", "The alpha valve opens at 3 bar.")
    ingestor = build_ingestor(IngestConfig(), embedded_kb)
    ingestor.run([folder], sync=True)
    given = _id(embedded_kb, old)
    new = folder / "alpha-valve.md"
    old.rename(new)
    _note(folder / "pumps.md", "Pumps", "The beta pump runs at 40 litres a minute.")
    report = ingestor.run([folder], sync=True)
    assert (report.counts["moved"], report.counts["added"], report.counts["removed"]) == (1, 1, 0)
    assert _id(embedded_kb, new) == given
    assert _id(embedded_kb, folder / "pumps.md") not in ("", given)


def _old_store(path: Path, records: int) -> None:
    """A records file as kbagent wrote it before source ids (and before roots)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE sources (source TEXT PRIMARY KEY, content_hash TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', "
        "doc_type TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT '', chunk_ids TEXT NOT NULL, "
        "ingested_at REAL NOT NULL); CREATE TABLE pending_deletes (chunk_id TEXT PRIMARY KEY);"
    )
    db.executemany(
        "INSERT INTO sources VALUES (?, ?, '', 'd', 'md', '[]', 0)", [(f"/s/{n}.md", f"h{n}") for n in range(records)]
    )
    db.commit()
    db.close()


def test_records_from_before_ids_get_them_in_place(tmp_path: Path) -> None:
    path = tmp_path / "sources.sqlite3"
    _old_store(path, 300)
    records = SourceRecords(path)
    ids = [r.source_id for r in records.all()]
    assert len(ids) == 300 and all(len(i) == 16 for i in ids) and len(set(ids)) == 300
    assert [r.content_hash for r in records.all()] == [f"h{n}" for n in sorted(range(300), key=str)]
    records.close()
    again = SourceRecords(path)  # opened again: the ids are kept, not made anew
    assert [r.source_id for r in again.all()] == ids
    again.put_many([SourceRecord("/s/1.md", "changed", chunk_ids=["a"])])  # read again: its id stays
    assert again.by_id(ids[1]) is not None and again.by_id(ids[1]).content_hash == "changed"  # type: ignore[union-attr]
    again.close()


def test_an_upgrade_cut_short_leaves_the_store_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade's last step fails (as a kill there would end it): its columns and ids are rolled back."""
    import knowledge_base.records as records_module

    path = tmp_path / "sources.sqlite3"
    _old_store(path, 5)
    monkeypatch.setattr(records_module, "ID_INDEX", "CREATE UNIQUE INDEX sources_by_id ON no_such_table (x)")
    with pytest.raises(sqlite3.OperationalError):
        SourceRecords(path)
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(sources)")}
    assert columns.isdisjoint({"source_id", "root"}), "a failed upgrade left part of itself"
    monkeypatch.undo()
    records = SourceRecords(path)
    assert len(records.all()) == 5 and all(len(r.source_id) == 16 for r in records.all())
    records.close()


def test_an_old_data_dir_gets_ids_without_reading_or_embedding_again(
    tmp_path: Path, settings: Settings, embedder: Embedder
) -> None:
    folder = tmp_path / "notes"
    _note(folder / "a.md", "Alpha", "The alpha valve opens at 3 bar.")
    _note(folder / "b.md", "Beta", "The beta pump runs at 40 litres a minute.")
    with open_knowledge_base(settings, embedder) as kb:
        build_ingestor(IngestConfig(), kb).run([folder])
    db = sqlite3.connect(Place.of(settings.store).records_path)  # back to the layout before ids
    db.executescript("DROP INDEX sources_by_id; ALTER TABLE sources DROP COLUMN source_id;")
    db.close()
    with open_knowledge_base(settings, embedder) as kb:
        ids = {r.source: r.source_id for r in kb.sources()}
        assert len(ids) == 2 and all(len(i) == 16 for i in ids.values())
        report = build_ingestor(IngestConfig(), kb).run([folder])
        assert report.counts["unchanged"] == 2 and report.embedded == 0
        assert {r.source: r.source_id for r in kb.sources()} == ids


@pytest.mark.usefixtures("postgres")
def test_postgres_records_from_before_ids_get_them_in_place(database_url: str) -> None:
    import psycopg

    from knowledge_base.postgres import Database, PostgresRecords

    with psycopg.connect(database_url, autocommit=True) as conn:  # a schema as kbagent made it before ids
        conn.execute("CREATE SCHEMA old")
        conn.execute(
            "CREATE TABLE old.sources (source text PRIMARY KEY, content_hash text NOT NULL, title text NOT NULL "
            "DEFAULT '', doc_type text NOT NULL DEFAULT '', kind text NOT NULL DEFAULT '', chunk_ids jsonb NOT NULL, "
            "ingested_at double precision NOT NULL, root text NOT NULL DEFAULT '')"
        )
        conn.execute(
            "INSERT INTO old.sources SELECT '/s/' || n, 'h', '', '', '', '[]', 0 FROM generate_series(1, 50) n"
        )
    records = PostgresRecords(Database(database_url, "old"))
    try:
        ids = {r.source: r.source_id for r in records.all()}
        assert len(set(ids.values())) == 50 and all(len(i) == 16 for i in ids.values())
        records.put_many([SourceRecord("/s/7", "edited")])
        assert records.by_id(ids["/s/7"]).content_hash == "edited"  # type: ignore[union-attr]
        records.put_many([SourceRecord("/s/new", "h")])
        assert records.source_ids(["/s/new"])["/s/new"] not in ids.values()
    finally:
        records.close()
    again = PostgresRecords(Database(database_url, "old"))
    try:
        assert {r.source: r.source_id for r in again.all() if r.source != "/s/new"} == ids
    finally:
        again.close()
