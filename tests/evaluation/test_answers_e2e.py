"""`kbagent eval --answers` end to end, as a user runs it: the real embedded model answers three questions of a
SQuAD-layout folder whose corpus gets a store of its own, and prints a JSON leaderboard."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import parts
from tests.support.cli import kbagent

pytestmark = [pytest.mark.slow, parts.llama_cpp()]

PARAGRAPHS = {
    "p1": ("Lighthouse keeping", "The Varne lightship was anchored in 1860. Its keeper, Tomas Brandt, logged the fog "
           "signal every hour and was relieved each fourteenth day by a crew from Folkestone."),
    "p2": ("Canal engineering", "The Aldbury lock raises boats 4.2 metres. It was completed in 1797 by the engineer "
           "Sarah Penhale, who built it of local sandstone."),
}  # fmt: skip
QUERIES = [
    ("q1", "Who kept the Varne lightship?", ["Tomas Brandt"], "p1"),
    ("q2", "How high does the Aldbury lock raise boats?", ["4.2 metres", "4.2"], "p2"),
    ("q3", "Who built the Aldbury lock?", ["Sarah Penhale"], "p2"),
]


def _squad_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, (t, x) in PARAGRAPHS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"id": q, "text": text, "answers": golds}) + "\n" for q, text, golds, _ in QUERIES)
    )
    qrels = "".join(f"{q}\t{d}\t1\n" for q, *_, d in QUERIES)
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder


def test_embedded_model_answers_a_squad_folder_with_a_leaderboard(tmp_path: Path) -> None:
    folder = _squad_folder(tmp_path / "squad")
    report = tmp_path / "report.jsonl"
    run = kbagent("eval", str(folder), "--answers", "--report", str(report), "--json", data=tmp_path / "data")
    assert run.returncode == 0, run.stderr[-2000:]
    board = json.loads(run.stdout)
    assert board["questions"] == 3 and list(board["models"]) == ["embedded"]
    overall = board["models"]["embedded"]["overall"]
    assert overall["errors"] == 0 and overall["questions"] == 3
    assert overall["contains"] is not None and overall["contains"] >= 2 / 3, report.read_text()
    for figure in ("cited", "unsupported_answers", "first_token_p50_s", "seconds_p95", "decode_tokens_per_s"):
        assert overall[figure] is not None, figure
    assert set(board["models"]["embedded"]["categories"]) == {"Lighthouse keeping", "Canal engineering"}
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and all(r["answer"] for r in rows)
    assert (tmp_path / "data" / "eval" / "squad").is_dir()  # the corpus's own store, reused next time

    again = kbagent("eval", str(folder), "--answers", "--report", str(report), "--json", data=tmp_path / "data")
    assert again.returncode == 0 and len(report.read_text().splitlines()) == 3  # resumed: nothing asked again
    assert json.loads(again.stdout)["models"] == board["models"]


def test_unknown_set_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    run: subprocess.CompletedProcess[str] = kbagent("eval", str(bad), "--answers", data=tmp_path / "data")
    assert run.returncode == 2 and run.stderr.startswith("kbagent: error:") and "Traceback" not in run.stderr
