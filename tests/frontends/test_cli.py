"""The `kbagent` command end to end, as a user runs it (real subprocesses, real model, real Chroma)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import kbagent
from tests.support.files import write_corpus

pytestmark = pytest.mark.slow


def test_ingest_search_sources_remove(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = write_corpus(tmp_path / "kb")
    (tmp_path / "kb" / "notes" / "broken.pdf").write_bytes(b"%PDF-1.4 nope")

    run = kbagent("ingest", str(tmp_path / "kb"), data=data)
    assert run.returncode == 0, run.stderr
    assert "6 added, 0 updated, 0 unchanged, 1 failed" in " ".join(run.stdout.split())
    assert "notes/broken.pdf: corrupt PDF" in run.stdout.replace("\n", " ")
    assert str(tmp_path) not in run.stdout  # relative to the folder given; --json keeps the full path

    strict = kbagent("ingest", str(tmp_path / "kb"), "--strict", data=data)
    assert strict.returncode == 1 and "6 unchanged" in strict.stdout

    found = kbagent("search", "impeller gasket part", "--json", "-k", "3", data=data)
    rows = json.loads(found.stdout)
    assert len(rows) == 3
    assert {"text", "source", "title", "doc_type", "page", "score", "chunk_id"} <= set(rows[0])
    assert rows[0]["source"] == str(files["pdf"]) and rows[0]["page"] == 2

    filtered = json.loads(kbagent("search", "anything", "--doc-type", "data", "--json", data=data).stdout)
    assert {r["doc_type"] for r in filtered} == {"data"}

    listed = json.loads(kbagent("sources", "--json", data=data).stdout)
    assert len(listed) == 6 and {"source", "chunks", "ingested_at"} <= set(listed[0])
    assert str(files["pdf"]) in {r["source"] for r in listed}
    human = kbagent("sources", data=data, env={"COLUMNS": "200"}).stdout
    relative = str(files["pdf"].relative_to(tmp_path / "kb"))
    assert relative in human and str(tmp_path) not in human
    searched = kbagent("search", "impeller gasket part", "-k", "1", data=data, env={"COLUMNS": "200"}).stdout
    assert relative in searched and str(tmp_path) not in searched

    removed = kbagent("remove", str(files["pdf"]), str(tmp_path / "kb" / "data"), data=data)
    assert removed.returncode == 0 and "2 sources removed" in removed.stdout
    stats = json.loads(kbagent("stats", "--json", data=data).stdout)
    assert stats["sources"] == 4 and stats["chunks"] == stats["recorded_chunks"]


def test_nothing_ingested_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_bytes(b"")
    run = kbagent("ingest", str(tmp_path / "empty.md"), data=tmp_path / "data")
    assert run.returncode == 1 and "empty file" in run.stdout


def test_config_masks_secrets_and_reports_bad_settings(tmp_path: Path) -> None:
    secret = "sk-test-1234567890abcdef"
    shown = kbagent("config", data=tmp_path / "data", env={"OPENAI_API_KEY": secret})
    assert shown.returncode == 0 and "data_dir" in shown.stdout
    assert secret not in shown.stdout and "1234567890" not in shown.stdout
    bad = kbagent("config", data=tmp_path / "data", env={"KBAGENT_CHUNK_SIZE": "lots"})
    assert bad.returncode == 2 and bad.stderr.startswith("kbagent: error: invalid setting KBAGENT_CHUNK_SIZE")
    model = kbagent("search", "x", data=tmp_path / "data", env={"KBAGENT_EMBEDDING_MODEL": "no/such-model"})
    assert model.returncode == 2
    assert "not available offline" in model.stderr and len(model.stderr.strip().splitlines()) == 1
