"""Which words of a passage back an answer's sentence: the spans the viewer marks more strongly inside the cited
passage. The same evidence `agent.grounding` checks (the sentence's key claims and rarer words), located: each
passage sentence scores the distinct words of the answer's sentence it holds, and the passage sentences holding
its claims, or at least half as many of its words as the best one, are its backing."""

from __future__ import annotations

import re

from agent.grounding import WORD, key_claims, rare_words

PASSAGE_SENTENCE = re.compile(r"\S(?:.*?)(?:[.!?](?=\s|$)|(?=\n)|$)")
"""A sentence (ending at a full stop before a space or the end: "0.5%" goes on) or a line of a passage."""
Span = tuple[int, int]


def backing_spans(sentence: str, passage: str, question: str = "") -> list[Span]:
    """Character spans of `passage` (its sentences or lines) that back `sentence`, in order; [] for none."""
    wanted = rare_words(sentence) - (rare_words(question) if question else set())
    claims = {c for c in key_claims(sentence) if not question or c not in key_claims(question)}
    header, blank, _ = passage.partition("\n\n")
    body_start = len(header) + 2 if blank and "\n" not in header else 0  # the chunk's context header backs nothing
    scored = []
    for match in PASSAGE_SENTENCE.finditer(passage, body_start):
        text = match.group(0)
        if not text.strip():
            continue
        words = {w for w in WORD.findall(text.lower()) if w in wanted}
        held = {c for c in claims if _holds(text, c)}
        start = match.start() + len(text) - len(text.lstrip())
        end = match.start() + len(text.rstrip())
        scored.append((len(words) + 2 * len(held), bool(held), (start, end)))
    best = max((score for score, _, _ in scored), default=0)
    if best == 0:
        return []
    return [span for score, holds_claim, span in scored if holds_claim or 2 * score >= best]


def _holds(text: str, claim: str) -> bool:
    if claim[:1].isdigit():
        return re.search(rf"(?<![\d.]){re.escape(claim)}(?![\d])", text.replace(",", "")) is not None
    return claim in " ".join(text.replace("-", " ").lower().split())
