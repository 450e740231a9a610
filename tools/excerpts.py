"""The sentences of retrieved passages that bear on the question, within a character budget.

A small local model reads a prompt slowly on a CPU (bench/agent_model.py measures the rate), so five whole
chunks cost seconds before the first word. Most of a chunk is beside the point: keeping each passage's heading
and its sentences that bear most on the question keeps the facts and halves the wait. A sentence's score is
its similarity to the question (by the knowledge base's own embedder), raised for the question's rarer words
it shares and for holding the kind of answer asked for (a number for "how many", a time or date for "when"),
as a sentence embedding misses both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kbagent.text import PASSAGE_SENTENCE_END
from knowledge_base.keyword_index import TOKEN, query_terms

if TYPE_CHECKING:
    from knowledge_base.embeddings import Embedder

REFERS_BACK = re.compile(
    r"^(?:(?:of|among|from|for|in|with|by|to|all|both|each|none|most|some)\s+(?:these|those|them|this|that|which|it)"
    r"|he|she|it|they|this|that|these|those|his|her|its|their|there)\b",
    re.IGNORECASE,
)
LEXICAL_WEIGHT = 0.2  # the share of the question's (rarity-weighted) words a unit holds, this much at most
ANSWER_TYPE_BOOST = 0.1
_MONTH = r"(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?|May(?=\s+\d)"
ANSWER_TYPES = [  # (question asks for, unit holds): answer-type matching, as classic QA systems do
    (
        re.compile(r"\bhow (?:many|much|often|far|old)\b|\bwhat (?:is |was |are )?the (?:price|cost|fee|number)", re.I),
        re.compile(r"\d"),
    ),
    (
        re.compile(r"\bwhen\b|\bwhat (?:time|date|day|year)\b|\bwhich (?:day|date|month|year)\b|\bhow long\b", re.I),
        re.compile(
            rf"\b\d{{1,2}}[:.]\d{{2}}\b|\b\d{{1,2}}\s?[ap]\.?m\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)days?\b"
            rf"|\b(?:{_MONTH})\b|\b(?:19|20)\d{{2}}\b|\b\d+\s+(?:minutes|hours|days|weeks|months|years)\b",
            re.I,
        ),
    ),
]
RELEVANCE_FLOOR = 0.5  # beyond each passage's best unit, only units at least half as similar as the best
EMPHASIS = re.compile(r"\*\*|__")  # bold markers: tokens a model reads and learns nothing from
LINE_ITEM = re.compile(r"^\s*(?:[|>#]|[-*+•]\s|\d+[.)]\s)")
GAP = "…"


@dataclass
class Unit:
    text: str
    new_line: bool  # starts a line of its own (a list item, a table row, a paragraph)


def split_units(text: str) -> tuple[str, list[Unit]]:
    """(heading, units): the chunk's context line ("Title › Section", written by the chunker) and the rest
    as sentences, list items and table rows. Wrapped lines of a paragraph are joined first."""
    heading, _, rest = EMPHASIS.sub("", text.strip()).partition("\n")
    parts = heading.split(" › ")
    parts[0] = parts[0].split(" | ")[0]  # a web page's "Page | Site name" title: the page says where it is
    # "Title › Chapter › Section": the title and the nearest section say where it is
    heading = " › ".join(parts if len(parts) <= 2 else [parts[0], parts[-1]])
    units: list[Unit] = []
    for block in re.split(r"\n\s*\n", rest):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        paragraph: list[str] = []
        columns: list[str] | None = None
        for line in lines:
            if not LINE_ITEM.match(line):
                paragraph.append(line)
                continue
            _add_paragraph(units, paragraph)
            if line.startswith("|"):
                if set(line) <= set("|-: "):
                    continue  # the table's rule line
                if columns is None:
                    columns = cells(line)
                    units.append(Unit(line, True))
                else:
                    units.append(Unit(row_line(columns, cells(line)), True))
            else:
                units.append(Unit(line, True))
        _add_paragraph(units, paragraph)
    return heading, units


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def row_line(columns: list[str], values: list[str]) -> str:
    """A table row as a line that says what each value is: "Saturday — Hours: 10:00–16:00; Donations:
    10:00–14:00". A model reading a bare row takes a value from the cell beside the right one (the donation
    times for the opening hours); the column names in the line keep each value with its name."""
    if len(columns) < 2 or len(values) != len(columns):
        return " | ".join(values)
    pairs = zip(columns[1:], values[1:], strict=True)
    named = [f"{name}: {value}" if name else value for name, value in pairs if value]
    return f"{values[0]} — {'; '.join(named)}" if values[0] else "; ".join(named)


def table_rows_as_lines(text: str) -> str:
    """Every Markdown table in `text` with its rows as self-contained lines (see `row_line`), the header kept."""
    out: list[str] = []
    columns: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            columns = None
            out.append(line)
        elif set(stripped) <= set("|-: "):
            continue
        elif columns is None:
            columns = cells(stripped)
            out.append(" | ".join(columns))
        else:
            out.append(row_line(columns, cells(stripped)))
    return "\n".join(out)


def _add_paragraph(units: list[Unit], paragraph: list[str]) -> None:
    sentences = PASSAGE_SENTENCE_END.split(" ".join(paragraph))
    units.extend(Unit(s, n == 0) for n, s in enumerate(sentences) if s.strip())
    paragraph.clear()


def focus(embedder: Embedder, question: str, texts: Sequence[str], budget_chars: int) -> list[str]:
    """Each text cut down to its units most similar to the question, about `budget_chars` in all.

    Every text keeps its heading and best unit, so every passage stays citable and placed; the rest of the
    budget goes to the best units wherever they are. A kept table row brings its header row. Kept units stay
    in their original order, with "…" where something between them was left out.
    """
    split = [split_units(t) for t in texts]
    flat = [(i, j) for i, (_, units) in enumerate(split) for j in range(len(units))]
    unit_texts = [split[i][1][j].text for i, j in flat]
    if sum(map(len, unit_texts)) <= budget_chars:
        order, scores = list(range(len(flat))), [1.0] * len(flat)  # everything fits: no need to rank
    else:
        scores = relevance(embedder, question, unit_texts)
        order = sorted(range(len(flat)), key=lambda n: -scores[n])
    chosen: set[tuple[int, int]] = set()
    used = 0

    def take(i: int, j: int) -> None:
        """A unit, the sentence before one that starts "He …" or "Of these …", and the line after one that ends
        in a colon. (A table row needs no header: it names its columns itself.)"""
        nonlocal used
        units = split[i][1]
        unit = units[j]
        wanted: list[int | None] = [j]
        if j > 0 and not unit.new_line and REFERS_BACK.match(unit.text):
            wanted.append(j - 1)
        if unit.text.endswith(":") and j + 1 < len(units):
            wanted.append(j + 1)
        for k in wanted:
            if k is not None and (i, k) not in chosen:
                chosen.add((i, k))
                used += len(units[k].text)

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
            if body:
                body += f"\n{GAP} " if j != last + 1 else "\n" if unit.new_line else " "
            body += unit.text.strip("| ") if unit.text.startswith("|") else unit.text  # "a | b": fewer tokens
            last = j
        out.append(f"{heading}\n{body}" if body else heading)
    return out


def relevance(embedder: Embedder, question: str, texts: Sequence[str]) -> list[float]:
    """Similarity to the question, plus the share of its words a text holds (each word weighted by how few
    of the texts have it), plus a little for holding the kind of answer the question asks for."""
    vectors = np.asarray(embedder.embed([question, *texts]), dtype=np.float32)
    scores = vectors[1:] @ vectors[0]
    words = {_stem(w) for w in query_terms(question)}
    held = [words & {_stem(w) for w in TOKEN.findall(t.lower())} for t in texts]
    weight = {w: np.log(1 + len(texts) / (1 + sum(w in h for h in held))) for w in words}
    total = sum(weight.values()) or 1.0
    scores += LEXICAL_WEIGHT * np.array([sum(weight[w] for w in h) / total for h in held], dtype=np.float32)
    for asks, holds in ANSWER_TYPES:
        if asks.search(question):
            scores += ANSWER_TYPE_BOOST * np.array([bool(holds.search(t)) for t in texts], dtype=np.float32)
    return scores.tolist()


def _stem(word: str) -> str:
    """Five letters: "refurbished" and "refurbishes" meet, as do "bring" and "bringing"."""
    return word[:5]
