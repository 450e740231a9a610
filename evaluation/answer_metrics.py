"""What an answer is worth, measured without a model: correctness against a reference, grounding in the
passages the agent saw, and abstention.

Correctness uses the official SQuAD v1.1 normalisation (lower-case, strip punctuation and the articles a, an,
the, collapse spaces). Grounding looks at an answer's *key claims*: numbers (amounts, percentages, times,
dates) and names (capitalised words that do not open a sentence). A claim is supported when a passage the
agent saw holds it; a cited sentence is supported when its cited passage holds its key claims and most of its
rarer words.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

ARTICLES = re.compile(r"\b(a|an|the)\b")
CITATION = re.compile(r"\[(\d{1,3})\]")
NUMBER = re.compile(r"\d+(?:[.,:/-]\d+)*")
CAPITALISED = re.compile(r"\b[A-Z][\w'’]*(?:[ -][A-Z][\w'’]*)*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(\"'])")
WORD = re.compile(r"[a-z0-9]+")
ABSTAINING = re.compile(
    r"couldn[’']t find|could not find|can(?:no|')t find|no (?:relevant )?information|does not (?:say|mention|"
    r"contain|state)|doesn[’']t (?:say|mention|contain|state)|not (?:mentioned|stated|found) in|i don[’']t know|"
    r"i do not know|unable to (?:find|answer)|no passage",
    re.IGNORECASE,
)
# Words so common that sharing them says nothing about support.
COMMON = set(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i not no yes do does did has have had can "
    "could will would should may might must also than then so such which who whom whose what when where why how "
    "all any each every some many much more most other into over under about after before between per".split()
)


def normalize(text: str) -> str:
    """SQuAD v1.1's answer normalisation."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(ARTICLES.sub(" ", text).split())


def contains(answer: str, golds: Sequence[str]) -> bool:
    """The normalised answer contains a normalised gold span (answers are sentences, spans are short)."""
    norm = f" {normalize(answer)} "
    return any(f" {normalize(g)} " in norm for g in golds if normalize(g))


def token_f1(answer: str, reference: str) -> float:
    """SQuAD's token F1 between the normalised answer and the reference."""
    got, want = normalize(answer).split(), normalize(reference).split()
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def keyword_recall(answer: str, keywords: Sequence[str]) -> float:
    """Share of the question's keywords the answer contains (case-insensitive)."""
    if not keywords:
        return 0.0
    lowered = answer.lower()
    return sum(k.lower() in lowered for k in keywords) / len(keywords)


def abstains(answer: str) -> bool:
    """The answer says the knowledge base does not tell (or gives nothing)."""
    return not answer.strip() or bool(ABSTAINING.search(answer))


def sentences(answer: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(answer.strip()) if s.strip()]


def key_claims(text: str) -> set[str]:
    """Numbers and names a text asserts, as comparable strings."""
    text = CITATION.sub(" ", text)
    return {n.replace(",", "") for n in NUMBER.findall(text)} | names(text)


def names(text: str) -> set[str]:
    """Runs of capitalised words, less leading common words ("The Harbour Network" → "harbour network"); a
    lone capitalised word that opens a sentence is only the sentence's first word, so it is not counted."""
    found = set()
    for sentence in sentences(text):
        opening = len(sentence) - len(sentence.lstrip("*_\"'“‘(- "))
        for match in CAPITALISED.finditer(sentence):
            words = match.group(0).replace("-", " ").split()
            first_word = match.start() == opening
            while words and words[0].lower() in COMMON:
                words, first_word = words[1:], False
            if words and not (first_word and len(words) == 1):
                found.add(" ".join(words).lower())
    return found


def _holds(passage: str, claim: str) -> bool:
    if claim[:1].isdigit():
        return claim in {n.replace(",", "") for n in NUMBER.findall(passage)}
    return claim in " ".join(passage.replace("-", " ").lower().split())


def unsupported_claims(answer: str, passages: Sequence[str]) -> list[str]:
    """Key claims of the answer that occur in no passage the agent saw (citation numbers aside)."""
    return sorted(c for c in key_claims(answer) if not any(_holds(p, c) for p in passages))


def rare_words(text: str) -> set[str]:
    return {w for w in WORD.findall(CITATION.sub(" ", text).lower()) if w not in COMMON and len(w) > 2}


def supports(sentence: str, passage: str, min_overlap: float = 0.5) -> bool:
    """The passage holds the sentence's key claims and at least `min_overlap` of its rarer words."""
    if any(not _holds(passage, claim) for claim in key_claims(sentence)):
        return False
    words = rare_words(sentence)
    if not words:
        return True
    found = rare_words(passage)
    return len(words & found) / len(words) >= min_overlap


@dataclass(frozen=True)
class Grounding:
    cited: bool  # at least one [n] refers to a passage the agent was given
    citations: int  # (sentence, [n]) pairs that refer to a given passage
    supported_citations: int  # of those, the ones whose passage supports the sentence
    unsupported: tuple[str, ...]  # key claims found in no passage

    @property
    def support(self) -> float | None:
        return self.supported_citations / self.citations if self.citations else None


def grounding(answer: str, passages: dict[int, str]) -> Grounding:
    """Citations checked against the numbered passages the agent was given (`{n: text}`)."""
    citations = supported = 0
    for sentence in sentences(answer):
        for n in {int(m) for m in CITATION.findall(sentence)}:
            if n in passages:
                citations += 1
                supported += supports(sentence, passages[n])
    return Grounding(citations > 0, citations, supported, tuple(unsupported_claims(answer, list(passages.values()))))
