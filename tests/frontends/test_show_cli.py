"""`kbagent show`: a cited passage in the terminal, as a user runs it (the real command, store and embedder; run
in this process, which saves a model load per command)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kbagent.cli import app
from kbagent.errors import KbagentError
from tests.support.files import write_pdf


def test_show_prints_the_passage_in_context_and_a_pdf_page_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("COLUMNS", "200")

    def kbagent(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
        monkeypatch.setenv("KBAGENT_DATA_DIR", str(data))
        result = runner.invoke(app, list(args))
        code = 2 if isinstance(result.exception, KbagentError) else result.exit_code
        return subprocess.CompletedProcess(args, code, result.stdout, "")

    data, folder = tmp_path / "data", tmp_path / "kb"
    folder.mkdir()
    (folder / "hours.md").write_text(
        "# Hours\n\nLine one before.\nLine two before.\n\n## Weekdays\n\nThe workshop opens on Tuesdays at 18:00.\n",
        encoding="utf-8",
    )
    write_pdf(folder / "report.pdf", ["Cover", "Finances\nThe co-op spent 3,150 euros on tools."])
    assert kbagent("ingest", str(folder), data=data).returncode == 0
    hits = json.loads(kbagent("search", "workshop Tuesdays", "--json", "-k", "1", data=data).stdout)
    citation = f"{hits[0]['source_id']}:{hits[0]['chunk_id']}"
    done = kbagent("show", citation, "--backing", "It opens on Tuesdays at 18:00.", data=data)
    assert done.returncode == 0, done.stderr
    assert "The workshop opens on Tuesdays at 18:00." in done.stdout and "hours.md" in done.stdout
    assert "Line two before." in done.stdout  # in its context: the lines before it

    pdf = json.loads(kbagent("search", "3,150 euros tools", "--json", "-k", "1", data=data).stdout)[0]
    done = kbagent("show", f"/source/kbagent/{pdf['source_id']}?chunk={pdf['chunk_id']}", data=data)
    assert done.returncode == 0, done.stderr
    assert "3,150 euros" in done.stdout and f"page 2: {(folder / 'report.pdf').as_uri()}#page=2" in done.stdout

    (folder / "hours.md").unlink()
    done = kbagent("show", citation, data=data)
    assert done.returncode == 1 and "moved or deleted" in done.stdout
    assert kbagent("show", "../../etc/passwd", data=data).returncode == 2
