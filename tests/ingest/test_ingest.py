"""Folders in, chunks out: every type, incremental re-ingest, --sync, and bad files that don't stop the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest import IngestConfig, Ingestor, build_ingestor
from knowledge_base import KnowledgeBase
from tests.support.files import write_corpus, write_pdf
from tests.support.stored import stored_texts


def _by_status(report) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for o in report.outcomes:
        out.setdefault(o.status, []).append(Path(o.source).name)
    return {k: sorted(v) for k, v in out.items()}


def test_folder_of_every_type(tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor) -> None:
    files = write_corpus(tmp_path / "kb")
    report = ingestor.run([tmp_path / "kb"])
    assert report.counts["added"] == len(files) and report.counts["failed"] == 0
    records = {Path(r.source).name: r for r in kb.sources()}
    assert records["pump.pdf"].doc_type == "manuals" and records["garden.md"].doc_type == "notes"
    assert records["prices.csv"].kind == "csv"

    cases = {
        "what is the gasket part number for the impeller": ("pump.pdf", "QX-7781"),
        "how long is the kettle warranty": ("kettle.docx", "27 months"),
        "price of saffron": ("prices.csv", "14.90"),
        "how much water do tomatoes need": ("garden.md", "2 litres"),
        "barometer reading": ("weather.txt", "1031 hPa"),
        "how long to simmer the lentil soup": ("recipe.html", "25 minutes"),
    }
    for query, (name, fact) in cases.items():
        top = kb.search(query, k=1)[0]
        assert Path(top.metadata["source"]).name == name, query
        assert fact in top.page_content
    pdf_hit = kb.search("impeller gasket", k=1)[0]
    assert pdf_hit.metadata["page"] == 2 and pdf_hit.page_content.startswith("Pump Manual\n\n")
    md_hit = kb.search("tomato watering", k=1)[0]
    assert md_hit.metadata["section"] == "Garden Handbook › Tomatoes"
    assert md_hit.page_content.startswith("Garden Handbook › Tomatoes\n\n")
    meta = md_hit.metadata
    assert {"source", "title", "doc_type", "chunk_index", "content_hash", "ingested_at"} <= set(meta)


def test_reingest_unchanged_embeds_nothing(tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor) -> None:
    write_corpus(tmp_path / "kb")
    first = ingestor.run([tmp_path / "kb"])
    ids = set(kb.collection.get(include=[])["ids"])
    again = ingestor.run([tmp_path / "kb"])
    assert again.embedded == 0 and again.counts["unchanged"] == first.counts["added"]
    assert set(kb.collection.get(include=[])["ids"]) == ids


def test_changed_file_replaces_its_chunks(tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor) -> None:
    files = write_corpus(tmp_path / "kb")
    ingestor.run([tmp_path / "kb"])
    before = kb.collection.count()
    files["md"].write_text("# Garden Handbook\n\n## Tomatoes\n\nTomatoes now get 3 litres.\n", encoding="utf-8")
    report = ingestor.run([tmp_path / "kb"])
    assert _by_status(report)["updated"] == ["garden.md"]
    assert report.embedded == 1
    garden = stored_texts(kb, where={"source": str(files["md"])})
    assert len(garden) == 1 and "3 litres" in garden[0]
    assert kb.collection.count() == before - 2  # intro and compost sections gone, nothing duplicated


def test_sync_removes_deleted_files(tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor) -> None:
    files = write_corpus(tmp_path / "kb")
    ingestor.run([tmp_path / "kb"])
    files["csv"].unlink()
    plain = ingestor.run([tmp_path / "kb"])
    assert plain.counts["removed"] == 0 and len(kb.sources()) == 6
    synced = ingestor.run([tmp_path / "kb"], sync=True)
    assert _by_status(synced)["removed"] == ["prices.csv"]
    assert len(kb.sources()) == 5
    assert not kb.collection.get(where={"source": str(files["csv"])}, include=[])["ids"]


def test_sync_keeps_files_that_failed_to_read(tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor) -> None:
    files = write_corpus(tmp_path / "kb")
    ingestor.run([tmp_path / "kb"])
    files["pdf"].write_bytes(b"%PDF-1.4 garbage")
    report = ingestor.run([tmp_path / "kb"], sync=True)
    assert _by_status(report)["failed"] == ["pump.pdf"] and report.counts["removed"] == 0
    assert any(r.source == str(files["pdf"]) for r in kb.sources())  # old chunks kept, nothing lost


def test_bad_files_are_reported_and_the_rest_ingested(
    tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "kb"
    write_corpus(root)
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.md").write_bytes(b"")
    (bad / "binary.txt").write_bytes(os.urandom(4000))
    (bad / "broken.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nnot really")
    good = write_pdf(tmp_path / "x.pdf", ["text"])
    (bad / "truncated.pdf").write_bytes(good.read_bytes()[:200])
    write_pdf(bad / "locked.pdf", ["secret"], password="pw")
    (bad / "fake.docx").write_bytes(b"this is not a zip")
    (bad / "latin1.txt").write_bytes("Crème brûlée recipe from the café".encode("latin-1"))
    (bad / "image.png").write_bytes(b"\x89PNG....")  # an image is read by OCR; this one is not an image
    (bad / "movie.mkv").write_bytes(b"\x1a\x45\xdf\xa3....")
    (bad / "unreadable.md").write_text("# Secret\n\nno access")
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "unreadable.md":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = ingestor.run([root])
    status = _by_status(report)
    assert status["failed"] == [
        "binary.txt",
        "broken.pdf",
        "empty.md",
        "fake.docx",
        "image.png",
        "locked.pdf",
        "truncated.pdf",
        "unreadable.md",
    ]
    assert status["skipped"] == ["movie.mkv"]
    assert "latin1.txt" in status["added"] and len(status["added"]) == 7
    for outcome in report.of("failed"):
        assert outcome.message and "\n" not in outcome.message
    assert report.succeeded
    messages = {Path(o.source).name: o.message for o in report.of("failed")}
    assert "permission denied" in messages["unreadable.md"]
    assert "encrypted" in messages["locked.pdf"]
    assert messages["image.png"].startswith("not a readable image")


def test_nothing_ingestible_is_a_failure(tmp_path: Path, ingestor: Ingestor) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    report = ingestor.run([tmp_path / "empty.txt", tmp_path / "missing.md"])
    assert not report.succeeded
    assert {o.message for o in report.of("failed")} == {"empty file", "no such file or directory"}


def test_glob_exclude_and_doc_type(tmp_path: Path, kb: KnowledgeBase, ingestor: Ingestor) -> None:
    write_corpus(tmp_path / "kb")
    report = ingestor.run([tmp_path / "kb"], globs=["*.md", "*.pdf", "*.csv"], excludes=["data/*"], doc_type="handbook")
    assert _by_status(report)["added"] == ["garden.md", "pump.pdf"]
    assert {r.doc_type for r in kb.sources()} == {"handbook"}


def test_oversized_file_is_skipped(tmp_path: Path, kb: KnowledgeBase) -> None:
    from ingest import Chunker, ChunkingConfig

    (tmp_path / "big.txt").write_text("word " * 3000)
    report = Ingestor(kb, Chunker(ChunkingConfig()), max_file_bytes=10_000).run([tmp_path / "big.txt"])
    assert "too large" in report.of("failed")[0].message


def test_sample_knowledge_base_ingests_cleanly(embedded_kb: KnowledgeBase) -> None:
    from ingest import IngestConfig, build_ingestor
    from tests.support.paths import SAMPLES

    report = build_ingestor(IngestConfig(), embedded_kb).run([SAMPLES])
    assert report.counts["failed"] == 0 and report.counts["added"] >= 15
    kinds = {r.kind for r in embedded_kb.sources()}
    assert {"md", "txt", "html", "pdf", "docx", "csv"} <= kinds


def test_searches_answer_during_an_ingest_in_the_same_process(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """The app's case: one process, ingest in a worker thread, chats searching meanwhile."""
    import threading

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"note{i:02}.md").write_text(
            f"# Note {i}\n\n" + " ".join(f"Fact {i}.{j} about ferries." for j in range(60))
        )
    build_ingestor(IngestConfig(), embedded_kb).run([docs / "note00.md"])
    worker = threading.Thread(target=build_ingestor(IngestConfig(), embedded_kb).run, args=([docs],))
    worker.start()
    answered = 0
    while worker.is_alive():
        hits = embedded_kb.search("facts about ferries", k=5)
        assert hits and "similarity" in hits[0].metadata
        answered += 1
    worker.join()
    assert answered >= 3
    assert len(embedded_kb.sources()) == 40


def test_a_misspelt_ingest_option_is_an_error_not_dropped(tmp_path: Path) -> None:
    from kbagent.components import Components
    from kbagent.settings import Settings

    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    with Components(Settings(data_dir=tmp_path / "data")) as parts, pytest.raises(TypeError, match="globz"):
        parts.ingest([tmp_path / "a.md"], globz=["*.md"])  # type: ignore[call-arg]


def test_the_counts_line_names_every_outcome_once() -> None:
    from ingest.report import IngestReport, Outcome, Status

    statuses: list[Status] = ["added", "added", "updated", "moved", "unchanged", "failed", "skipped", "removed"]
    report = IngestReport([Outcome(f"s{i}", s) for i, s in enumerate(statuses)], embedded=6, reused=2, seconds=2.0)
    line = report.summary()
    words = "added updated unchanged failed skipped removed moved".split()
    assert [w for w in line.replace(",", " ").replace(";", " ").split() if w in words] == words
    assert line.startswith("2 added, 1 updated, 1 unchanged, 1 failed, 1 skipped, 1 removed, 1 moved; ")
    assert "6 chunks embedded (2 reused) in 2.0s (3.0 chunks/s)" in line
