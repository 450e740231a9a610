"""Metrics against hand-computed cases; `kbagent eval` end to end on tiny sets in both formats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation import evaluate_beir, evaluate_questions, load_questions
from evaluation.metrics import ndcg, recall, reciprocal_rank
from evaluation.questions import Question, score_question
from ingest import IngestConfig, build_ingestor
from knowledge_base import KnowledgeBase


def test_reciprocal_rank() -> None:
    assert reciprocal_rank([False, False, True]) == pytest.approx(1 / 3)
    assert reciprocal_rank([False, False]) == 0.0
    assert reciprocal_rank([False, False, True], k=2) == 0.0


def test_ndcg_hand_computed_against_the_standard_ideal() -> None:
    # hits at ranks 2 and 3 of 3 relevant items: the ideal has all 3 at the top
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ideal3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg([False, True, True], 10, total_relevant=3) == pytest.approx(dcg / ideal3)
    # the same two hits when only they exist: the ideal is ranks 1 and 2, never better than that
    assert ndcg([False, True, True], 10, total_relevant=2) == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert ndcg([True, False], 10, total_relevant=1) == 1.0
    assert ndcg([True, False], 10, total_relevant=4) < 1.0  # one of four found: not perfect
    assert ndcg([False, False], 10, total_relevant=1) == 0.0
    assert ndcg([False, True], 1, total_relevant=1) == 0.0


def test_recall() -> None:
    assert recall([True, False, True, True], 3, 4) == 0.5
    assert recall([], 3, 0) == 0.0


def test_score_question_per_keyword_average() -> None:
    q = Question(question="q", keywords=["Alpha", "beta", "gamma"])
    texts = ["nothing", "has ALPHA", "beta and alpha"]
    mrr, nd, coverage, ranks = score_question(q, texts, k=10)
    assert ranks == {"Alpha": 2, "beta": 3, "gamma": None}
    assert mrr == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert coverage == pytest.approx(2 / 3)
    # each keyword's relevant item is its first chunk: nDCG = 1/log2(1 + rank), whatever repeats it below
    assert nd == pytest.approx((1 / math.log2(3) + 1 / math.log2(4) + 0) / 3)


def test_load_questions_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok?", "keywords": ["x"]}\n{"question": "no keywords"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:2"):
        load_questions(path)


def test_question_set_end_to_end(embedded_kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferries.md").write_text("# Ferries\n\nThe ferry to Skerry Island leaves at 07:40 from Pier 9.\n")
    (docs / "bakery.md").write_text("# Bakery\n\nThe bakery sells cardamom buns for 3.50 each.\n")
    build_ingestor(IngestConfig(), embedded_kb).run([docs])
    questions = [
        Question(
            question="When does the boat to Skerry Island depart?", keywords=["07:40", "Pier 9"], category="transport"
        ),
        Question(question="How much is a cardamom bun?", keywords=["3.50"], category="food"),
        Question(question="Who is the mayor?", keywords=["mayor Zed"], category="food"),
    ]
    result = evaluate_questions(embedded_kb, questions, k=2)
    summary = result.summary()
    assert summary["categories"]["transport"] == {"questions": 1, "mrr": 1.0, "ndcg": 1.0, "coverage": 1.0}
    assert summary["categories"]["food"]["coverage"] == 0.5
    assert summary["overall"]["questions"] == 3
    assert result.results[0].retrieved[0]["source"].endswith("ferries.md")


def _beir(folder: Path) -> Path:
    folder.mkdir()
    corpus = [
        {"id": "d1", "title": "Vitamin D", "text": "Vitamin D deficiency raises the risk of bone fractures."},
        {"id": "d2", "title": "Sleep", "text": "Short sleep is linked to weight gain in adults."},
        {"id": "d3", "title": "Coffee", "text": "Coffee consumption lowers the risk of liver disease."},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    queries = [
        {"id": "q1", "text": "Does lack of vitamin D cause broken bones?"},
        {"id": "q2", "text": "coffee and the liver"},
        {"id": "q3", "text": "unjudged query"},
    ]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    return folder


def test_beir_end_to_end(embedded_kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = _beir(tmp_path / "tiny")
    result = evaluate_beir(embedded_kb, build_ingestor(IngestConfig(), embedded_kb), folder)
    summary = result.summary()
    assert summary["queries"] == 2
    assert summary["ndcg@10"] == 1.0 and summary["recall@100"] == 1.0 and summary["mrr@10"] == 1.0
    assert summary["latency_ms_p50"] is not None


@pytest.mark.slow
def test_eval_cli_both_formats(tmp_path: Path) -> None:
    from tests.support.cli import kbagent
    from tests.support.paths import SAMPLES

    data = tmp_path / "data"
    assert kbagent("ingest", str(SAMPLES), data=data).returncode == 0
    questions = SAMPLES.parent / "harborview_questions.jsonl"
    report = tmp_path / "report.jsonl"
    run = kbagent("eval", str(questions), "--json", "--report", str(report), "--limit", "5", data=data)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["overall"]["questions"] == 5 and summary["mode"] == "hybrid"
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 5 and {"mrr", "ndcg", "coverage", "retrieved"} <= set(lines[0])
    assert {"text", "source", "score"} <= set(lines[0]["retrieved"][0])

    table = kbagent("eval", str(questions), "--limit", "3", "--mode", "keyword", data=data)
    assert "overall" in table.stdout and "MRR" in table.stdout

    beir = kbagent("eval", str(_beir(tmp_path / "tiny")), "--json", data=tmp_path / "unused")
    assert beir.returncode == 0, beir.stderr
    assert json.loads(beir.stdout)["ndcg@10"] == 1.0

    bad = kbagent("eval", str(tmp_path / "missing.jsonl"), data=data)
    assert bad.returncode == 2 and "no such file" in bad.stderr
