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
from tests.support.openai_stand_in import ANSWER, openai_stand_in


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


def test_ask_open_shows_the_cited_passage_in_its_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kbagent ask --open 1`: after the answer (a scripted one, from an OpenAI-compatible stand-in), citation [1]
    as `kbagent show` prints it: the cited PDF's page, its words in context, the page's link. A number the answer
    does not cite is one line."""
    runner = CliRunner()
    folder = tmp_path / "kb"
    folder.mkdir()
    pdf = write_pdf(
        folder / "review.pdf",
        ["Harbour Review 2024\nPrepared by the harbour office.", "Fees\nA Family membership costs $70 per year.\n"
         "Single riders pay $40."],
    )  # fmt: skip
    (folder / "tides.md").write_text("# Tides\n\nHigh tide is at 06:12 on Sundays.\n", encoding="utf-8")
    monkeypatch.setenv("KBAGENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    assert runner.invoke(app, ["ingest", str(folder)]).exit_code == 0
    with openai_stand_in() as (url, _):
        monkeypatch.setenv("KBAGENT_MODEL", "openai:gpt-4o-mini")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        done = runner.invoke(app, ["ask", "What does a Family membership cost?", "--open", "1"])
        assert done.exit_code == 0, (done.stdout, done.exception)
        answer, _, shown = done.stdout.partition(f"— {pdf}")  # the view's first line: the title, then the file
        assert ANSWER in answer and "Single riders pay $40." in shown and "A Family membership costs $70" in shown
        assert f"page 2: {pdf.as_uri()}#page=2" in shown

        wrong = runner.invoke(app, ["ask", "What does a Family membership cost?", "--open", "4"])
    assert (
        isinstance(wrong.exception, KbagentError)
        and str(wrong.exception) == "--open 4: the answer cites no [4]; it cites [1]"
    )
