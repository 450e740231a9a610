"""The prompts teach the format, never the answers: no sentence and no number-fact of theirs comes from the
sample knowledge base (a model shown "X costs $8" in its prompt would answer the sample questions unread)."""

from __future__ import annotations

import re
from functools import cache

from agent import prompts
from ingest.loaders import is_supported, load
from tests.support.paths import SAMPLES

NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# Words too common to make a fact distinctive when they sit next to a number.
COMMON = {"after", "answer", "from", "have", "into", "like", "only", "than", "that", "their", "them", "then"}
COMMON |= {"they", "this", "what", "when", "which", "with", "your", "each", "there", "these", "those", "were"}


def _normal(text: str) -> str:
    """Lower case, Markdown and table marks dropped, one space between words."""
    return " ".join(re.sub(r"[*_|#`]", " ", text).lower().split())


def _sentences(text: str) -> list[str]:
    return [s for s in (_normal(p) for p in re.split(r"(?<=[.!?:])\s+|\n", text)) if s]


@cache
def _sample_texts() -> tuple[str, ...]:
    """Every sample file's text as the app reads it (PDF, Word and HTML through the loaders)."""
    texts = []
    for path in sorted(p for p in SAMPLES.parent.rglob("*") if p.is_file()):
        if is_supported(path):
            texts.append("\n".join(d.page_content for d in load(path, path.read_bytes())))
        else:
            texts.append(path.read_text(encoding="utf-8"))
    return tuple(texts)


def _prompt_texts() -> list[str]:
    texts = [v for k, v in vars(prompts).items() if isinstance(v, str) and not k.startswith("__")]
    texts.append(prompts.retrieval_first_message("What is asked?", "[1] A passage.", ["1 + 1 = 2"]))
    texts.extend(text for example in prompts.EXAMPLES for text in example)  # the worked example too
    return texts


def _facts(sentence: str) -> list[tuple[str, str]]:
    """(number, word) pairs of one sentence: each number with each distinctive word beside it."""
    sentence = re.sub(r"\[\d+\]", " ", sentence)  # citation marks are format, not facts
    words = {w for w in re.findall(r"[a-z]+", sentence) if len(w) >= 4 and w not in COMMON}
    return [(n, w) for n in NUMBER.findall(sentence) for w in words]


def test_the_sample_knowledge_base_is_read() -> None:
    texts = _sample_texts()
    assert len(texts) >= 20 and all(t.strip() for t in texts)
    assert any("$8" in t for t in texts)  # the fact the old citation example quoted


def test_no_prompt_sentence_comes_from_the_samples() -> None:
    samples = [_normal(t) for t in _sample_texts()]
    for prompt in _prompt_texts():
        for sentence in _sentences(prompt):
            if len(sentence.split()) >= 4:
                assert not any(sentence in s for s in samples), sentence


def test_no_prompt_number_fact_comes_from_the_samples() -> None:
    sample_sentences = [
        (set(NUMBER.findall(s)), set(re.findall(r"[a-z]+", s))) for t in _sample_texts() for s in _sentences(t)
    ]
    for prompt in _prompt_texts():
        for sentence in _sentences(prompt):
            for number, word in _facts(sentence):
                shared = any(number in numbers and word in words for numbers, words in sample_sentences)
                assert not shared, f"{sentence!r}: {word} … {number} is a fact of the samples"
