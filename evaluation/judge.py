"""An LLM judge: accuracy, completeness and relevance on 1–5 with a one-line reason each, against the reference
answer. A malformed reply is that question's error, never the run's end."""

from __future__ import annotations

import json
import re
from typing import Protocol

CRITERIA = ("accuracy", "completeness", "relevance")
PROMPT = """You grade an answer to a question against a reference answer.
Score each criterion from 1 (worst) to 5 (best):
- accuracy: the answer's facts agree with the reference answer;
- completeness: the answer covers what the reference answer covers;
- relevance: the answer addresses the question and nothing else.
Reply with one JSON object and nothing else, in this form:
{{"accuracy": 4, "accuracy_reason": "...", "completeness": 3, "completeness_reason": "...",
 "relevance": 5, "relevance_reason": "..."}}

Question: <question>{question}</question>
Reference answer: <reference>{reference}</reference>
Answer to grade: <answer>{answer}</answer>"""
JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)

Grade = dict[str, float | str]
"""Each criterion's score and its `<criterion>_reason`, or {"error": why there is none}."""


class ChatModel(Protocol):
    """What the judge uses of a chat model (a LangChain one, or one that waits for its turn)."""

    def invoke(self, prompt: str, /) -> object: ...


class Judge:
    """Grades with any LangChain chat model (temperature 0 is the caller's choice)."""

    def __init__(self, model: ChatModel, label: str) -> None:
        self.model = model
        self.label = label

    def grade(self, question: str, reference: str, answer: str) -> Grade:
        prompt = PROMPT.format(question=question, reference=reference or "(none)", answer=answer or "(empty)")
        try:
            reply = self.model.invoke(prompt)
        except Exception as exc:  # the judge's failure is this question's, not the run's
            return {"error": f"the judge failed: {type(exc).__name__}: {str(exc)[:200]}"}
        return parse_grade(getattr(reply, "content", reply))


def parse_grade(reply: object) -> Grade:
    """The scores and reasons from the judge's reply, or {"error": ...} saying what was wrong with it."""
    text = reply if isinstance(reply, str) else json.dumps(reply)
    match = JSON_OBJECT.search(text)
    try:
        data = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return {"error": f"the judge's reply is not a JSON object: {text[:120]!r}"}
    grade: Grade = {}
    for name in CRITERIA:
        score = data.get(name)
        if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 5:
            return {"error": f"the judge gave no 1–5 score for {name}: {text[:120]!r}"}
        grade[name] = float(score)
        grade[f"{name}_reason"] = " ".join(str(data.get(f"{name}_reason", "")).split())[:300]
    return grade
