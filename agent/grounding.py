"""Whether a sentence is backed by a passage: its *key claims* and its rarer words.

Key claims are numbers (amounts, percentages, times, dates) and names (capitalised words that do not open a
sentence). A claim is supported when a passage holds it; a sentence is supported by a passage that holds its
key claims and most of its rarer words. The agent uses this to cite and check answers as they stream; the
answer evaluation uses it to score them. No model is involved: it is cheap enough to run on every sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kbagent.text import SUPPORT_STOPWORDS, answer_sentences
from tools.knowledge_search import CITATION_GROUP, cited_numbers

NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
CAPITALISED = re.compile(r"\b[A-Z][\w'’]*(?:[ -][A-Z][\w'’]*)*")
WORD = re.compile(r"[a-z0-9]+")
MIN_OVERLAP = 0.5
# Words a model capitalises about the prompt itself ("as Passage [2] says"): not names the answer asserts.
PROMPT_WORDS = {"passage", "passages", "question", "tool", "results"}
# The numbers that pin a question to one thing: a year, a measurement with decimals ("in 2019", "27.5 inch").
SPECIFIC = re.compile(r"(?<![\w.,/:-])(?:1\d{3}|2\d{3}|\d+\.\d+)(?!\w|[.,/:-]\d)")


def sentences(answer: str) -> list[str]:
    return answer_sentences(answer)


def key_claims(text: str) -> set[str]:
    """Numbers and names a text asserts, as comparable strings."""
    text = CITATION_GROUP.sub(" ", text)
    return {n.replace(",", "") for n in NUMBER.findall(text)} | names(text)


def names(text: str) -> set[str]:
    """Runs of capitalised words, less leading common words ("The Harbour Network" → "harbour network") and
    less a sentence's opening word, which is capitalised whatever it is."""
    found = set()
    for sentence in sentences(text):
        opening = len(sentence) - len(sentence.lstrip("*_\"'“‘(- 0123456789.)"))
        for match in CAPITALISED.finditer(sentence):
            words = match.group(0).replace("-", " ").split()
            first_word = match.start() == opening
            while words and words[0].lower() in SUPPORT_STOPWORDS | PROMPT_WORDS:
                words, first_word = words[1:], False
            if first_word:  # "Hello Ada", "Priya Vantongeren": the opening word may be the sentence's, not the name's
                words = words[1:]
            if words:
                found.add(" ".join(words).lower())
    return found


def holds(passage: str, claim: str) -> bool:
    if claim[:1].isdigit():
        return claim in {n.replace(",", "") for n in NUMBER.findall(passage)}
    text = " ".join(passage.replace("-", " ").lower().split())
    return claim in text or (claim.endswith("s") and claim[:-1] in text)  # "Saturdays" for "Saturday"


def unsupported_claims(text: str, passages: Sequence[str]) -> list[str]:
    """Key claims of the text that occur in no passage (citation numbers aside)."""
    return sorted(c for c in key_claims(text) if not any(holds(p, c) for p in passages))


def specifics_missing(question: str, passages: Sequence[str]) -> list[str]:
    """The question's years and decimal measurements that no passage holds. A question about 2019 that no
    passage found mentions cannot be answered from them, however close their other words."""
    asked = set(SPECIFIC.findall(question))  # no thousands separators: a year or a decimal has none
    return sorted(n for n in asked if not any(holds(p, n) for p in passages))


def rare_words(text: str) -> set[str]:
    return {w for w in WORD.findall(CITATION_GROUP.sub(" ", text).lower()) if w not in SUPPORT_STOPWORDS and len(w) > 2}


def overlap(sentence: str, passage: str, question: str = "") -> float:
    """The share of the sentence's rarer words the passage holds (1.0 for a sentence without any), or, if
    higher, of the words the sentence adds to the `question`: "Jacksonville's ranking in the United States is
    12th" stands on "12th", not on the question's words it repeats."""
    words, held = rare_words(sentence), rare_words(passage)
    share = len(words & held) / len(words) if words else 1.0
    added = words - rare_words(question)
    return max(share, len(added & held) / len(added)) if added and question else share


def supports(sentence: str, passage: str, min_overlap: float = MIN_OVERLAP, question: str = "") -> bool:
    """The passage holds the sentence's key claims and at least `min_overlap` of its rarer words (of those
    not restated from the `question`)."""
    if any(not holds(passage, claim) for claim in own_claims(sentence, question)):
        return False
    return overlap(sentence, passage, question) >= min_overlap


def own_claims(sentence: str, question: str = "") -> set[str]:
    """The sentence's key claims less those the question holds (restating "the United States" it was asked
    about asserts nothing)."""
    return {c for c in key_claims(sentence) if not (question and holds(question, c))}


def best_support(
    sentence: str, passages: dict[int, str], min_overlap: float = MIN_OVERLAP, question: str = ""
) -> int | None:
    """The number of the passage that supports the sentence best (most of its rarer words; the earlier, better
    ranked passage on a tie), or None when none does."""
    claims = own_claims(sentence, question)
    best, best_score = None, min_overlap
    for n, text in sorted(passages.items()):
        if any(not holds(text, c) for c in claims):
            continue
        score = overlap(sentence, text, question)
        if score > best_score or (best is None and score >= best_score):
            best, best_score = n, score
    return best


@dataclass(frozen=True)
class Grounding:
    cited: bool  # at least one [n] refers to a passage the agent was given
    citations: int  # (sentence, [n]) pairs that refer to a given passage
    supported_citations: int  # of those, the ones whose passage supports the sentence
    unsupported: tuple[str, ...]  # key claims found in no passage

    @property
    def support(self) -> float | None:
        return self.supported_citations / self.citations if self.citations else None


def grounding(answer: str, passages: dict[int, str], question: str = "") -> Grounding:
    """Citations checked against the numbered passages the agent was given (`{n: text}`), as the agent checks
    them (`agent.citations`): a claim restated from the `question` is not one the answer made up."""
    citations = supported = 0
    for sentence in sentences(answer):
        for n in cited_numbers(sentence):
            if n in passages:
                citations += 1
                supported += supports(sentence, passages[n], question=question)
    unsupported = unsupported_claims(answer, [*passages.values(), question])
    return Grounding(citations > 0, citations, supported, tuple(unsupported))
