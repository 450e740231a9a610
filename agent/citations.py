"""Citations attached and checked while the answer streams.

Small models often answer right and cite nothing (the embedded one cited 1 answer in 20). So every sentence
is checked as it ends: one the model left uncited gets the passage that supports it ("… $6.50 [2]."); one
whose cited passage does not support it gets the one that does; one whose key claims (numbers, dates, names)
occur in no passage and no tool result is reported as unsupported. The streamed text is the final text: a
sentence's closing punctuation is held back until the next character shows whether the sentence ended, so a
citation can go before it (a decimal point or "e.g." is released at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agent.events import Token, Unsupported
from agent.grounding import best_support, cited_numbers, key_claims, rare_words, supports, unsupported_claims

CLOSERS = "\"')]*”’"
OPENERS = "\"'(*“‘#-•>|"
MIN_WORDS = 3  # "1." of a numbered list, "Yes." are not claims to cite


@dataclass
class Evidence:
    passages: dict[int, str]  # what the answer may cite, by number
    other: list[str] = field(default_factory=list)  # tool results: they support claims, but are not cited
    question: str = ""  # numbers the answer restates from it are not the answer's own claims


class CitationChecker:
    """Feed it the answer's text as it streams; it gives back the events to pass on (the same text, with
    citations put in, and `Unsupported` for each sentence no source backs)."""

    def __init__(self, evidence: Callable[[], Evidence]) -> None:
        self.evidence = evidence
        self.text = ""  # everything passed on so far
        self.sentence = ""  # the current sentence, as passed on
        self.held = ""  # closing punctuation and the space after it, not passed on yet
        self.unsupported: list[Unsupported] = []
        self.claims = 0  # sentences with key claims
        self.numbers = 0  # numbers the answer states (amounts, dates, times), and of those, the ones no source has
        self.missing_numbers = 0
        self._out: list[Token | Unsupported] = []

    def feed(self, text: str) -> list[Token | Unsupported]:
        for char in text:
            self._char(char)
        return self._flush()

    def finish(self) -> list[Token | Unsupported]:
        self._close()
        return self._flush()

    def made_up(self) -> bool:
        """Whether the answer's core is backed by no source: most of its own numbers (the core of most short
        answers: a price, a date, a count; not those it restates from the question), or, without numbers, every
        claim."""
        if self.numbers:
            return 2 * self.missing_numbers > self.numbers
        return bool(self.claims) and len(self.unsupported) == self.claims

    def _char(self, char: str) -> None:
        if not self.held:
            if char in ".!?":
                self.held = char
            elif char == "\n":
                self.held = char
                self._close()
            else:
                self._emit(char)
            return
        if char in ".!?" + CLOSERS and not self.held[-1].isspace():
            self.held += char
        elif char.isspace():
            self.held += char
            if char == "\n":
                self._close()
        elif self.held[-1].isspace() and (char.isupper() or char.isdigit() or char in OPENERS):
            self._close()
            self._char(char)
        else:  # "6.50", "e.g. the", "end. [2]": the sentence goes on
            held, self.held = self.held, ""
            self._emit(held)
            self._char(char)

    def _emit(self, text: str) -> None:
        self.sentence += text
        self._pass_on(text)

    def _pass_on(self, text: str) -> None:
        if text:
            self.text += text
            if self._out and isinstance(self._out[-1], Token):
                self._out[-1].text += text
            else:
                self._out.append(Token(text))

    def _close(self) -> None:
        """The sentence ended: cite and check it, then pass on what was held back."""
        sentence, held = self.sentence.strip(), self.held
        self.sentence, self.held = "", ""
        if sentence:
            self._pass_on(self._citation(sentence, (sentence + held).strip()))
        self._pass_on(held)

    def _citation(self, sentence: str, whole: str) -> str:
        """The citation (" [n]") a sentence needs, if any, after recording whether it is supported; `whole` is
        the sentence with its closing punctuation, as reported."""
        evidence = self.evidence()
        claims = key_claims(sentence)
        if claims:
            self.claims += 1
            missing = unsupported_claims(sentence, [*evidence.passages.values(), *evidence.other])
            restated = key_claims(evidence.question)
            self.numbers += sum(c[:1].isdigit() and c not in restated for c in claims)
            self.missing_numbers += sum(c[:1].isdigit() and c not in restated for c in missing)
            if missing:
                self.unsupported.append(Unsupported(whole, missing))
                self._out.append(self.unsupported[-1])
                return ""
        if len(sentence.split()) < MIN_WORDS or not rare_words(sentence):
            return ""
        cited = [n for n in cited_numbers(sentence) if n in evidence.passages]
        if any(supports(sentence, evidence.passages[n]) for n in cited):
            return ""
        n = best_support(sentence, evidence.passages)
        return f" [{n}]" if n is not None and n not in cited else ""

    def _flush(self) -> list[Token | Unsupported]:
        out, self._out = self._out, []
        return out
