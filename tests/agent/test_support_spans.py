"""Support spans: the citation checker records which sentences of which cited passage back each answer
sentence (for the viewer to mark more strongly), and records none for a sentence no passage backs."""

from __future__ import annotations

from agent.citations import CitationChecker, Evidence
from agent.events import Support, Token

CHAIN = (
    "Chain wear › Limits\n\nChains stretch as their pins wear. Replace the chain at 0.5% wear on 11-speed "
    "drivetrains. Clean it every month with a rag."
)
BRAKES = "Brakes › Pads\n\nBrake pads last about 2,000 km. Check them before every long ride."


def _checked(answer: str, question: str = "") -> CitationChecker:
    checker = CitationChecker(lambda: Evidence({1: BRAKES, 2: CHAIN}, question=question))
    events = checker.feed(answer) + checker.finish()
    assert all(isinstance(e, Token) for e in events) or events  # the events passed on are unchanged in kind
    return checker


def test_a_cited_sentence_gets_the_passage_sentence_that_backs_it() -> None:
    checker = _checked("You should replace the chain at 0.5% wear on an 11-speed drivetrain.")
    backing = "Replace the chain at 0.5% wear on 11-speed drivetrains."
    start = CHAIN.index(backing)
    assert checker.support == [
        Support(
            "You should replace the chain at 0.5% wear on an 11-speed drivetrain.", {2: [(start, start + len(backing))]}
        )
    ]
    assert CHAIN[slice(*checker.support[0].spans[2][0])] == backing


def test_each_sentence_gets_its_own_passage_and_an_unbacked_one_none() -> None:
    checker = _checked("Brake pads last about 2,000 km. The saddle height is 75 cm.")
    assert [s.sentence for s in checker.support] == ["Brake pads last about 2,000 km."]
    (span,) = checker.support[0].spans[1]
    assert BRAKES[span[0] : span[1]] == "Brake pads last about 2,000 km."
    assert [u.sentence for u in checker.unsupported] == ["The saddle height is 75 cm."]
