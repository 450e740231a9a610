"""The sentences of retrieved passages that bear on the question, within a character budget.

A small local model reads a prompt at ~100 tokens/s on two cores, so five whole chunks cost ~8 s before the
first word. Most of a chunk is beside the point: keeping each passage's heading and its sentences most
similar to the question (by the knowledge base's own embedder) keeps the facts and halves the wait.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)\s+(?=[A-Z0-9\"'(\[$£€])")  # not after an initial
REFERS_BACK = re.compile(r"^(?:he|she|it|they|this|that|these|those|his|her|its|their|there)\b", re.IGNORECASE)
RELEVANCE_FLOOR = 0.5  # beyond each passage's best unit, only units at least half as similar as the best
EMPHASIS = re.compile(r"\*\*|__")  # bold markers: tokens a model reads and learns nothing from
LINE_ITEM = re.compile(r"^\s*(?:[|>#]|[-*+•]\s|\d+[.)]\s)")
GAP = "…"


@dataclass
class Unit:
    text: str
    new_line: bool  # starts a line of its own (a list item, a table row, a paragraph)
    table_head: int | None = None  # for a table row: the index of its table's header row


def split_units(text: str) -> tuple[str, list[Unit]]:
    """(heading, units): the chunk's context line ("Title › Section", written by the chunker) and the rest
    as sentences, list items and table rows. Wrapped lines of a paragraph are joined first."""
    heading, _, rest = EMPHASIS.sub("", text.strip()).partition("\n")
    parts = heading.split(" › ")
    if len(parts) > 2:  # "Title › Chapter › Section": the title and the nearest section say where it is
        heading = f"{parts[0]} › {parts[-1]}"
    units: list[Unit] = []
    for block in re.split(r"\n\s*\n", rest):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        head: int | None = None
        paragraph: list[str] = []
        for line in lines:
            if not LINE_ITEM.match(line):
                paragraph.append(line)
                continue
            _add_paragraph(units, paragraph)
            if line.startswith("|"):
                if set(line) <= set("|-: "):
                    continue  # the table's rule line
                if head is None:
                    head = len(units)
                units.append(Unit(line, True, head if head != len(units) else None))
            else:
                units.append(Unit(line, True))
        _add_paragraph(units, paragraph)
    return heading, units


def _add_paragraph(units: list[Unit], paragraph: list[str]) -> None:
    sentences = SENTENCE_END.split(" ".join(paragraph))
    units.extend(Unit(s, n == 0) for n, s in enumerate(sentences) if s.strip())
    paragraph.clear()


def focus(embedder: Any, question: str, texts: Sequence[str], budget_chars: int) -> list[str]:
    """Each text cut down to its units most similar to the question, about `budget_chars` in all.

    Every text keeps its heading and best unit, so every passage stays citable and placed; the rest of the
    budget goes to the best units wherever they are. A kept table row brings its header row. Kept units stay
    in their original order, with "…" where something was left out.
    """
    split = [split_units(t) for t in texts]
    flat = [(i, j) for i, (_, units) in enumerate(split) for j in range(len(units))]
    unit_texts = [split[i][1][j].text for i, j in flat]
    if sum(map(len, unit_texts)) <= budget_chars:
        order, scores = list(range(len(flat))), [1.0] * len(flat)  # everything fits: no need to rank
    else:
        vectors = np.asarray(embedder.embed([question, *unit_texts]), dtype=np.float32)
        scores = (vectors[1:] @ vectors[0]).tolist()
        order = sorted(range(len(flat)), key=lambda n: -scores[n])
    chosen: set[tuple[int, int]] = set()
    used = 0

    def take(i: int, j: int) -> None:
        """A unit, its table's header row, and the sentence before one that starts "He …" or "This …"."""
        nonlocal used
        unit = split[i][1][j]
        wanted = [j, unit.table_head]
        if j > 0 and not unit.new_line and REFERS_BACK.match(unit.text):
            wanted.append(j - 1)
        for k in wanted:
            if k is not None and (i, k) not in chosen:
                chosen.add((i, k))
                used += len(split[i][1][k].text)

    for i in range(len(texts)):  # each text's best unit first
        best = next((flat[n] for n in order if flat[n][0] == i), None)
        if best is not None:
            take(*best)
    floor = scores[order[0]] * RELEVANCE_FLOOR if order else 0.0
    for n in order:
        if scores[n] < floor:
            break
        if flat[n] not in chosen and used + len(unit_texts[n]) <= budget_chars:
            take(*flat[n])
    out = []
    for i, (heading, units) in enumerate(split):
        body, last = "", -1
        for j in sorted(j for k, j in chosen if k == i):
            unit = units[j]
            if j != last + 1:
                body += ("\n" if body else "") + GAP + " "
            elif body:
                body += "\n" if unit.new_line else " "
            body += unit.text
            last = j
        if units and last != len(units) - 1:
            body += " " + GAP
        out.append(f"{heading}\n{body}" if body else heading)
    return out
