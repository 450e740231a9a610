"""Where questions for the answers evaluation come from: a question set (JSON lines) or a SQuAD-layout folder
(`corpus.jsonl`, `queries.jsonl` with reference `answers`, `qrels.tsv`), sampled reproducibly."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.answers import AnswerQuestion
from evaluation.questions import load_questions


def load_answer_set(path: Path) -> list[AnswerQuestion]:
    """Questions in file order. A folder is a SQuAD-layout set; a file is a question set."""
    if path.is_dir():
        return _squad(path)
    return [
        AnswerQuestion(
            id=f"q{n:04d}",
            question=q.question,
            category=q.category,
            keywords=tuple(q.keywords),
            reference=q.reference_answer,
            answerable=q.answerable,
        )
        for n, q in enumerate(load_questions(path), start=1)
    ]


def _squad(folder: Path) -> list[AnswerQuestion]:
    titles = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        titles[doc["id"]] = doc.get("title", "")
    gold_doc = {}
    for line in (folder / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, *_ = line.split("\t")
        gold_doc[query_id] = doc_id
    questions = []
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        query = json.loads(line)
        answers = tuple(dict.fromkeys(query.get("answers") or []))
        if not answers:
            raise ValueError(f"{folder / 'queries.jsonl'}: query {query['id']} has no reference answers")
        category = titles.get(gold_doc.get(query["id"], ""), "") or "general"
        questions.append(AnswerQuestion(query["id"], query["text"], category, reference=answers[0], golds=answers))
    return questions


def sample(
    questions: list[AnswerQuestion], per_category: int | None = None, limit: int | None = None
) -> list[AnswerQuestion]:
    """The first `per_category` of each category in file order, or the first `limit`: the same every run."""
    if per_category is not None:
        seen: dict[str, int] = {}
        chosen = []
        for q in questions:
            if seen.get(q.category, 0) < per_category:
                seen[q.category] = seen.get(q.category, 0) + 1
                chosen.append(q)
        questions = chosen
    return questions[:limit] if limit is not None else questions
