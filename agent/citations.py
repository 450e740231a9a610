"""Citations attached and checked while the answer streams.

Small models often answer right and cite nothing (the embedded one cited 1 answer in 20). So every sentence
is checked as it ends: one the model left uncited gets the passage that supports it ("… $6.50 [2]."); the
model's own "[n]" is held back until its sentence ends and kept only if its passage backs the sentence, else
replaced by the one that does; one whose key claims (numbers, dates, names)
occur in no passage and no tool result is reported as unsupported. The streamed text is the final text: a
sentence's closing punctuation is held back until the next character shows whether the sentence ended, so a
citation can go before it (a decimal point or "e.g." is released at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.events import Support, Token, Unsupported
from agent.grounding import best_support, holds, key_claims, own_claims, rare_words, supports, unsupported_claims
from agent.support import backing_spans
from tools.knowledge_search import cited_numbers

CLOSERS = "\"')]*”’"
OPENERS = "\"'(*“‘#-•>|"
MAYBE_CITATION = re.compile(r"\[(?:\d{1,3}(?:\s*[,–-]\s*(?:\d{1,3})?)*\]?)?")  # "[", "[2", "[2, 3]"
# Words no claim ends on: a sentence ending on one ("The lead for that product is [1].") left its claim out.
# Particles that end phrasal verbs ("check in", "sign up") are not here.
DANGLING = frozenset(
    "is are was were be been being has have had the a an of to by at for with from than and or nor but "
    "its their his her your our my per costs cost earns totals equals named called".split()
)
LAST_WORD = re.compile(r"([A-Za-z]+)\W*$")


@dataclass
class Evidence:
    passages: dict[int, str]  # what the answer may cite, by number
    other: list[str] = field(default_factory=list)  # tool results: they support claims, but are not cited
    question: str = ""  # numbers the answer restates from it are not the answer's own claims
    tool_results: list[str] = field(default_factory=list)  # (in `other` too) back a sentence whose claims they hold


class CitationChecker:
    """Feed it the answer's text as it streams; it gives back the events to pass on (the same text, with
    citations put in, and `Unsupported` for each sentence no source backs)."""

    def __init__(self, evidence: Callable[[], Evidence]) -> None:
        self.evidence = evidence
        self.text = ""  # everything passed on so far
        self.sentence = ""  # the current sentence, as passed on
        self.held = ""  # closing punctuation and the space after it, not passed on yet
        self.pending = ""  # a "[2" being written: a citation of the model's, or text
        self.space = ""  # spaces not passed on yet (see `_text_char`)
        self.model_cites: set[int] = set()  # the current sentence's citations, as the model wrote them
        self.unsupported: list[Unsupported] = []
        self.claims = 0  # sentences with key claims
        self.citable = 0  # sentences that say something (rarer words), and of those, the ones a passage backs
        self.backed = 0
        self.numbered = 0  # sentences stating numbers of their own (amounts, dates, times; not the question's)
        self.wrong = 0  # of those, the ones where no source has half or more of those numbers
        self.empty = 0  # sentences whose claim is missing: they end on "is", "the", "of" (`DANGLING`)
        self.support: list[Support] = []  # per cited sentence, the spans of its passages that back it
        self._out: list[Token | Unsupported] = []

    def feed(self, text: str) -> list[Token | Unsupported]:
        for char in text:
            self._char(char)
        return self._flush()

    def finish(self) -> list[Token | Unsupported]:
        if self.pending and not self.pending.endswith("]"):
            text, self.pending = self.pending, ""
            for c in text:
                self._text_char(c)
        self._close()
        return self._flush()

    def unbacked(self) -> bool:
        """Whether no sentence that says something has a passage that backs it: an answer none of whose
        sentences can be cited is, measured on answers, a wrong one."""
        return self.citable > 0 and self.backed == 0

    def made_up(self) -> bool:
        """Whether the answer's core is backed by no source: most of its sentences with numbers of their own
        (the core of most short answers: a price, a date, a count; not numbers restated from the question) are
        wrong, a sentence being wrong when no source has half or more of its numbers ("June 16 at 18:30" with
        no 16 anywhere is a wrong date, whatever the time); without numbers, every claim is unbacked. A sentence
        whose claim is missing ("… is [1].") makes the answer made up too: its citation backs nothing it says."""
        if self.empty:
            return True
        if self.numbered:
            return 2 * self.wrong > self.numbered
        return bool(self.claims) and len(self.unsupported) == self.claims

    def _char(self, char: str) -> None:
        if self.pending or char == "[":
            self._citation_char(char)
            return
        self._text_char(char)

    def _citation_char(self, char: str) -> None:
        """A "[n]" the model writes is held back until its sentence ends: there it is kept if its passage backs
        the sentence, or replaced by the one that does (small models cite the wrong passage as often as not)."""
        self.pending += char
        if not MAYBE_CITATION.fullmatch(self.pending):  # "[see", "[a link](…)": text after all
            text, self.pending = self.pending, ""
            for c in text:
                self._text_char(c)
        elif char == "]":
            self.model_cites.update(cited_numbers(self.pending))
            self.pending = ""

    def _text_char(self, char: str) -> None:
        if not self.held:
            if char == " ":
                self.space += char  # passed on with what follows: a "[n]" the model put after it may be dropped
                return
            space, self.space = self.space, ""
            if char in ".!?":
                self._emit("" if self.model_cites else space)  # "15:00 [2]." with [2] dropped: "15:00."
                self.held = char
            elif char == "\n":
                self.held = char
                self._close()
            else:
                self._emit(space + char)
            return
        if char in ".!?" + CLOSERS and not self.held[-1].isspace():
            self.held += char
        elif char.isspace():
            self.held += char
            if char == "\n":
                self._close()
        elif self.held[-1].isspace() and (char.isupper() or char.isdigit() or char in OPENERS):
            self._close()
            self._text_char(char)
        else:  # "6.50", "e.g. the": the sentence goes on
            held, self.held = self.held, ""
            self._emit(held)
            self._text_char(char)

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
        sentence, held, cites = self.sentence.strip(), self.held, self.model_cites
        self.sentence, self.held, self.model_cites = "", "", set()
        if sentence or cites:
            citation = self._citation(sentence, (sentence + held).strip(), cites)
            self._pass_on(citation.lstrip() if self.text[-1:].isspace() else citation)  # "… 14 euros [1]."
        self._pass_on(held)

    def _citation(self, sentence: str, whole: str, cites: set[int]) -> str:
        """The citation (" [n]") a sentence gets, if any, after recording whether it is supported: the
        passages of the model's own `cites` that back it, else the passage that backs it best. `whole` is the
        sentence with its closing punctuation, as reported."""
        evidence = self.evidence()
        question, passages = evidence.question, evidence.passages
        claims, says = key_claims(sentence), bool(rare_words(sentence))
        added = own_claims(sentence, question)  # not restated from the question
        self.citable += says
        last = LAST_WORD.search(sentence)
        self.empty += says and last is not None and last.group(1).lower() in DANGLING
        if claims:
            self.claims += 1
            missing = unsupported_claims(sentence, [*passages.values(), *evidence.other])
            numbers = {c for c in added if c[:1].isdigit()}
            self.numbered += bool(numbers)
            self.wrong += bool(numbers) and 2 * len(numbers.intersection(missing)) >= len(numbers)
            if missing:
                self.unsupported.append(Unsupported(whole, missing))
                self._out.append(self.unsupported[-1])
                return ""
        if not says:  # "1." of a numbered list, "Yes.": nothing to cite
            return ""
        backing = sorted(n for n in cites if n in passages and supports(sentence, passages[n], question=question))
        if not backing:
            best = best_support(sentence, passages, question=question)
            backing = [] if best is None else [best]
        # a calculator's or a page's result backs what it holds
        by_tool = bool(added) and all(any(holds(r, c) for r in evidence.tool_results) for c in added)
        self.backed += bool(backing) or by_tool
        if backing:
            spans = {n: backing_spans(sentence, passages[n], question) for n in backing}
            self.support.append(Support(whole, spans))
        return " " + "".join(f"[{n}]" for n in backing) if backing else ""

    def _flush(self) -> list[Token | Unsupported]:
        out, self._out = self._out, []
        return out
