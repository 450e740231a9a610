"""The answers evaluation: hand-computed metrics on crafted answers, the judge's reply parsing, and a run with
two models that resumes after being stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.events import Done, Event, Sources, Token
from evaluation.answer_metrics import (
    abstains,
    contains,
    grounding,
    key_claims,
    keyword_recall,
    normalize,
    supports,
    token_f1,
    unsupported_claims,
)
from evaluation.answer_sets import load_answer_set, sample
from evaluation.answers import AnswerQuestion, leaderboard, read_report, run_answers
from evaluation.judge import Judge, parse_grade
from tools.knowledge_search import Passage


def test_squad_normalisation_contains_and_f1() -> None:
    assert normalize("The  Denver Broncos!") == "denver broncos"
    assert contains("It was the Denver Broncos, in 2016.", ["Denver Broncos"])
    assert not contains("Denverite Broncosaurus", ["Denver Broncos"])  # whole tokens, not substrings
    # answer tokens: denver broncos won (3); reference: denver broncos (2); 2 shared → P 2/3, R 1 → F1 0.8
    assert token_f1("Denver Broncos won", "the Denver Broncos") == pytest.approx(0.8)
    assert token_f1("nothing alike", "Denver Broncos") == 0.0
    assert keyword_recall("Opens at 10:00 on Saturday", ["10:00", "saturday", "16:00"]) == pytest.approx(2 / 3)


def test_abstention() -> None:
    assert abstains("I couldn't find that in the knowledge base.")
    assert abstains("The knowledge base does not mention a closing time.")
    assert abstains("")
    assert not abstains("It closes at 18:00 [1].")


def test_key_claims_and_unsupported() -> None:
    assert key_claims("Then Ada Lovelace paid $1,200 on 2024-03-05 [2].") == {"ada lovelace", "1200", "2024-03-05"}
    assert key_claims("Yes, it opens at 10:00.") == {"10:00"}  # a sentence's first word is no name
    assert key_claims("Hello Ada.") == {"ada"}  # nor part of one
    passages = ["The fee is 1,200 euros, paid by Ada Lovelace.", "Opened on 2024-03-05."]
    assert unsupported_claims("Ada Lovelace paid 1200 on 2024-03-05 [1].", passages) == []
    assert unsupported_claims("Then Grace Hopper paid 1300 [1].", passages) == ["1300", "grace hopper"]


def test_citation_support_and_grounding() -> None:
    passage = "Workshop hours: Saturday 10:00 to 16:00. Donations are taken from 10:00 to 14:00."
    assert supports("The workshop is open on Saturday from 10:00 to 16:00.", passage)
    assert not supports("The workshop is open on Saturday until 18:00.", passage)  # 18:00 is not there
    assert not supports("Members receive free lunches and parking permits.", passage)  # rare words missing
    answer = "It opens at 10:00 on Saturday [1]. It closes at 18:00 [1]. See also [7]."
    found = grounding(answer, {1: passage, 2: "unrelated"})
    assert found.cited and found.citations == 2 and found.supported_citations == 1  # [7] was never given
    assert found.support == 0.5 and found.unsupported == ("18:00",)
    assert not grounding("No brackets here.", {1: passage}).cited
    ranked = "Jacksonville is the 12th most populous city in the US."
    question = "What is Jacksonville's rank by size among United States cities?"
    said = "By size, Jacksonville's rank among United States cities is 12th."
    assert not supports(said, ranked)  # most of its words are not in the passage...
    assert supports(said, ranked, question=question)  # ...but they are the question's: "12th" is the claim
    assert not supports(said.replace("12th", "14th"), ranked, question=question)
    restated = "The workshop of Ada Okafor opens at 10:00 [1]. According to Passage [1], it closes at 16:00."
    assert grounding(restated, {1: passage}).unsupported == ("ada okafor",)  # "Passage" is not a name
    assert not grounding(restated, {1: passage}, "When does the workshop of Ada Okafor open?").unsupported


def test_judge_reply_parsed_and_malformed_is_a_clear_error() -> None:
    good = parse_grade('Sure! {"accuracy": 5, "accuracy_reason": "right", "completeness": 4, "relevance": 5}')
    assert (good["accuracy"], good["completeness"], good["relevance"]) == (5.0, 4.0, 5.0)
    assert good["accuracy_reason"] == "right"
    assert "not a JSON object" in parse_grade("I think it is fine.")["error"]
    assert "accuracy" in parse_grade('{"accuracy": 9, "completeness": 4, "relevance": 5}')["error"]
    assert "completeness" in parse_grade('{"accuracy": 3, "completeness": "high", "relevance": 5}')["error"]

    class Broken:
        def invoke(self, prompt: str) -> Any:
            raise TimeoutError("no reply")

    assert "judge failed" in Judge(Broken(), "x").grade("q", "r", "a")["error"]


class _Replies:
    """A stand-in for the agent's stream: fixed answers, citing passage 1 (the runner logic is what's tested)."""

    def __init__(self, answers: dict[str, str], fail_on: str | None = None) -> None:
        self.answers, self.fail_on, self.asked = answers, fail_on, []

    def __call__(self, question: str) -> Iterator[Event]:
        self.asked.append(question)
        if question == self.fail_on:
            raise KeyboardInterrupt  # the run is killed here
        yield Token(self.answers[question][:5])
        yield Token(self.answers[question][5:])
        text = "The ferry leaves at 07:40 from Pier 9."
        passage = Passage(n=1, chunk_id="c1", title="Ferry", source="f.md", text=text)
        yield Sources([passage], [])
        replaced = self.answers[question].startswith("I couldn")
        yield Done(self.answers[question], "t", "m", 0.1, retracted="Ada won." if replaced else "")


def test_two_models_one_leaderboard_and_resume_after_a_kill(tmp_path: Path) -> None:
    questions = [
        AnswerQuestion("a", "When does the ferry leave?", "fact", ("07:40",), "At 07:40."),
        AnswerQuestion("b", "From which pier?", "fact", ("Pier 9",), "Pier 9."),
        AnswerQuestion("c", "Who won in 1850?", "none", answerable=False),
    ]
    good = {"When does the ferry leave?": "It leaves at 07:40 [1].", "From which pier?": "From Pier 9 [1].",
            "Who won in 1850?": "I couldn't find that in the knowledge base."}  # fmt: skip
    bad = {"When does the ferry leave?": "At 09:15 [1].", "From which pier?": "Pier 4.",
           "Who won in 1850?": "Ada Lovelace won."}  # fmt: skip
    report = tmp_path / "report.jsonl"
    killed = _Replies(bad, fail_on="From which pier?")
    with pytest.raises(KeyboardInterrupt):
        run_answers({"good": _Replies(good), "bad": killed}, questions, report)
    written = [(r.model, r.id) for r in read_report(report)]
    assert written == [("good", "a"), ("good", "b"), ("good", "c"), ("bad", "a")]

    resumed_good, resumed_bad = _Replies(good), _Replies(bad)
    rows = run_answers({"good": resumed_good, "bad": resumed_bad}, questions, report)
    assert resumed_good.asked == [] and resumed_bad.asked == ["From which pier?", "Who won in 1850?"]
    assert len(rows) == 6 and len(report.read_text().splitlines()) == 6
    board = leaderboard(rows)
    assert board["good"]["overall"]["contains"] == 1.0 and board["bad"]["overall"]["contains"] == 0.0
    assert board["good"]["overall"]["abstained_unanswerable"] == 1.0
    assert board["bad"]["overall"]["abstained_unanswerable"] == 0.0
    assert board["good"]["overall"]["cited"] == 1.0 and board["bad"]["overall"]["cited"] == 0.5
    assert board["bad"]["overall"]["unsupported_answers"] == 1.0  # 09:15 and pier 4 are in no passage
    assert board["good"]["categories"]["fact"]["questions"] == 2
    assert board["good"]["overall"]["replaced_answers"] == round(1 / 3, 4)  # the agent replaced one made-up answer
    assert board["bad"]["overall"]["replaced_answers"] == 0.0


def test_question_sets_and_squad_folders_load_and_sample(tmp_path: Path) -> None:
    qs = tmp_path / "q.jsonl"
    lines = [{"question": f"Q{i}?", "keywords": ["k"], "category": "ab"[i % 2]} for i in range(5)]
    lines.append({"question": "Unknowable?", "answerable": False, "category": "none"})
    qs.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    loaded = load_answer_set(qs)
    assert [q.question for q in sample(loaded, per_category=1)] == ["Q0?", "Q1?", "Unknowable?"]
    assert [q.question for q in sample(loaded, limit=2)] == ["Q0?", "Q1?"]
    assert loaded[-1].answerable is False
    squad = tmp_path / "squad"
    squad.mkdir()
    (squad / "corpus.jsonl").write_text(json.dumps({"id": "d1", "title": "Ferries", "text": "t"}) + "\n")
    (squad / "queries.jsonl").write_text(json.dumps({"id": "x", "text": "When?", "answers": ["07:40", "07:40"]}) + "\n")
    (squad / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nx\td1\t1\n")
    [q] = load_answer_set(squad)
    assert (q.golds, q.category, q.reference) == (("07:40",), "Ferries", "07:40")


def test_a_scripted_judge_grades_each_answer_and_a_bad_reply_is_that_rows_error(tmp_path: Path) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    replies = ['{"accuracy": 5, "completeness": 4, "relevance": 5, "accuracy_reason": "matches"}', "Looks fine!"]
    judge = Judge(FakeListChatModel(responses=replies), "fake:judge")
    questions = [
        AnswerQuestion("a", "When does the ferry leave?", "fact", ("07:40",), "At 07:40."),
        AnswerQuestion("b", "From which pier?", "fact", ("Pier 9",), "Pier 9."),
    ]
    answers = {"When does the ferry leave?": "It leaves at 07:40 [1].", "From which pier?": "From Pier 9 [1]."}
    rows = run_answers({"m": _Replies(answers)}, questions, tmp_path / "r.jsonl", judge)
    assert rows[0].judge is not None and rows[0].judge["accuracy"] == 5.0
    assert rows[1].judge is not None and "not a JSON object" in rows[1].judge["error"]
    assert leaderboard(rows)["m"]["overall"]["judge"] == {"accuracy": 5.0, "completeness": 4.0, "relevance": 5.0}


def test_correctness_is_scored_on_the_answers_words_not_its_citations() -> None:
    """ "07:40 [1] from Pier 9" contains the span "07:40 from Pier 9": a citation marker is not a word."""
    from evaluation.answers import answer_row

    question = AnswerQuestion("s", "When and from where does it leave?", golds=("07:40 from Pier 9",))
    answer = "It leaves at 07:40 [1] from Pier 9 [1]."
    row = answer_row("m", question, lambda q: iter([Token(answer), Done(answer, "t", "m", 0.1)]))
    assert row.contains and row.f1 is not None and row.f1 > 0.7


def test_a_replaced_answer_keeps_the_first_answer_and_whether_it_was_right() -> None:
    """A withdrawal of a right answer costs more than a wrong one kept: each row says whether the answer the
    check withdrew held the expected answer, so a run counts the right answers its checks withdrew."""
    from evaluation.answers import answer_row

    question = AnswerQuestion("s", "When does the first ferry leave?", golds=("07:40",))
    withdrawn = "I couldn't find that in the knowledge base."
    for first, right in [("It leaves at 07:40.", True), ("It leaves at 08:15.", False)]:
        done = Done(withdrawn, "t", "m", 0.1, retracted=first)
        row = answer_row("m", question, lambda q, done=done: iter([Token(withdrawn), done]))
        assert (row.replaced, row.retracted, row.retracted_contains, row.contains) == (True, first, right, False)
    row = answer_row("m", question, lambda q: iter([Token("At 07:40."), Done("At 07:40.", "t", "m", 0.1)]))
    assert (row.replaced, row.retracted, row.retracted_contains, row.contains) == (False, "", None, True)
