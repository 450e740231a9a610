"""Text handling every layer shares, defined once: where sentences end, and which words are too common to count.

Two of each, on purpose, named for what they serve: an answer is cut where a model's sentence ends (a citation
may open the next one), a document where its author's does (not after an initial: "J. Smith"); a word is too
common to *rank* by (the keyword index: short, so rare query words still score), or too common to show that a
passage *backs* a sentence (the answer check: longer, since sharing "could" or "about" says nothing).
"""

from __future__ import annotations

import re

ANSWER_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(\"'])")
PASSAGE_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)\s+(?=[A-Z0-9\"'(\[$£€])")  # not after an initial

# Words too common to rank by; leaving them out also keeps posting-list scans short on large stores.
RANKING_STOPWORDS = frozenset(
    "a an and are as at be been but by can do does for from had has have how i if in into is it its of on or "
    "s so such t than that the their them then there these they this to was we were what when where which who "
    "why will with you your".split()
)
# Words so common that sharing them says nothing about support.
SUPPORT_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i not no yes do does did has have had can "
    "could will would should may might must also than then so such which who whom whose what when where why how "
    "all any each every some many much more most other into over under about after before between per".split()
)


def answer_sentences(text: str) -> list[str]:
    """An answer's sentences, stripped, none empty."""
    return [s.strip() for s in ANSWER_SENTENCE_END.split(text.strip()) if s.strip()]
