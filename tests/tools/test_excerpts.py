"""Excerpts for local models: the sentences that bear on the question, within budget, still readable."""

from __future__ import annotations

from tools.excerpts import focus, relevance, split_units, table_rows_as_lines

MINUTES = """Board Minutes - 16 January 2024 › Minutes › 3. Membership fees
The Treasurer reported that the Standard fee had been $40 since 2017 while rent rose 18%. He proposed raising
the Standard membership to $45. Lucia Brandvold argued for a smaller rise. Vote: 6 for, 1 against (L. Brandvold).

Decision: the Standard membership rises to $45 per year from 1 March 2024."""

PRICES = """Membership › Current prices
Prices shown are those in force from **1 September 2024**.

| Tier | Price |
|------|-------|
| Day Pass | **$8 per visit** |
| Family | **$70 per year** |
| Sustaining | **$120 per year** |"""

BIKES = """Bike sales › Refurbished bikes
Refurbished bikes are checked by two mechanics before sale. Every bike comes with a free first service.
Prices start at $60 for a child's bike. Adult bikes cost between $90 and $250 depending on the frame."""


def test_units_are_sentences_list_items_and_table_rows() -> None:
    heading, units = split_units(MINUTES)
    assert heading == "Board Minutes - 16 January 2024 › 3. Membership fees"  # title and nearest section
    texts = [u.text for u in units]
    assert "He proposed raising the Standard membership to $45." in texts  # wrapped lines joined
    assert "Vote: 6 for, 1 against (L. Brandvold)." in texts  # no split after an initial
    _, rows = split_units(PRICES)
    assert [u.text for u in rows][1:] == [  # each row says what its values are
        "| Tier | Price |",
        "Day Pass — Price: $8 per visit",
        "Family — Price: $70 per year",
        "Sustaining — Price: $120 per year",
    ]


def test_focus_keeps_what_answers_within_budget(embedder) -> None:  # type: ignore[no-untyped-def]
    texts = [MINUTES, PRICES, BIKES]
    out = focus(embedder, "Who proposed raising the Standard membership?", texts, 200)
    assert len(out) == 3
    minutes, _, bikes = out
    assert "He proposed raising the Standard membership to $45." in minutes
    assert "The Treasurer reported" in minutes  # "He …" brings the sentence it refers back to
    assert "Lucia" not in minutes or len(minutes) < len(MINUTES)
    assert bikes.startswith("Bike sales › Refurbished bikes\n")  # every passage keeps heading and one unit
    assert sum(len(t) for t in out) < sum(len(t) for t in texts)
    assert "…" not in bikes.splitlines()[1]  # nothing marks what was cut before the first or after the last unit

    family = focus(embedder, "How much is a Family membership?", texts, 150)[1]
    assert "Family — Price: $70 per year" in family  # a row carries its column names
    assert "| Family" not in family
    assert "**" not in family


HOURS = """Opening hours › Winter
| Day | Hours | Donations drop-off |
|-----|-------|--------------------|
| Saturday | 10:00–16:00 | 10:00–14:00 |
| Sunday | 12:00–15:00 | |
| Monday | closed | closed |"""


def test_table_rows_become_lines_that_name_their_columns(embedder) -> None:  # type: ignore[no-untyped-def]
    """A model reading "Saturday | 10:00–16:00 | 10:00–14:00" takes one cell for the other; each row comes as
    one line with its column names, in excerpts and in the search tool's passages, and empty cells are left out."""
    lines = ["Saturday — Hours: 10:00–16:00; Donations drop-off: 10:00–14:00", "Sunday — Hours: 12:00–15:00"]
    assert table_rows_as_lines(HOURS).splitlines()[1:4] == ["Day | Hours | Donations drop-off", *lines]
    saturday = focus(embedder, "What are the Saturday opening hours?", [HOURS, BIKES], 200)[0]
    assert lines[0] in saturday
    assert table_rows_as_lines("No table here.\n| a |") == "No table here.\na"


def test_focus_leaves_short_passages_whole(embedder) -> None:  # type: ignore[no-untyped-def]
    out = focus(embedder, "anything", [BIKES], 5000)
    assert out[0].splitlines()[1:] == [
        "Refurbished bikes are checked by two mechanics before sale. Every bike comes with a free first service. "
        "Prices start at $60 for a child's bike. Adult bikes cost between $90 and $250 depending on the frame."
    ]
    assert focus(embedder, "anything", [], 100) == []
    assert focus(embedder, "anything", ["Only a heading"], 100) == ["Only a heading"]


STAFF = """Staff and Volunteers | Harborview Community Bike Co-op › Staff
The co-op is run by volunteers. Most of them give one evening a week.

The co-op has exactly one paid employee:
- Felix Marchetti — Workshop Manager (part-time, 26 hours per week).

Volunteers elect the board every October. The board meets quarterly in the mezzanine office."""

RESCUE = """Annual Report 2024 › Bike Rescue
Intake Day on 7 September brought in 214 bikes from the town's racks. Of these, 163 were refurbished and given
away on Giving Day. The crew thanked the harbour police for storing bikes over the summer."""

DROP_OFF = """Donation Policy › How to donate
We welcome bikes in almost any condition, and parts of every kind. Bring donations to the side door on
Saturdays between 10:00 and 14:00. Our volunteers sort and label everything that comes in."""


def test_focus_keeps_what_a_kept_line_leans_on(embedder) -> None:  # type: ignore[no-untyped-def]
    staff = focus(embedder, "Who is the only paid staff member?", [STAFF, RESCUE], 120)[0]
    assert staff.startswith("Staff and Volunteers › Staff\n")  # the site's name is dropped from a page title
    assert "one paid employee:\n- Felix Marchetti" in staff  # a line ending in a colon brings the next one
    rescue = focus(embedder, "How many refurbished bikes were given away?", [RESCUE, STAFF], 60)[0]
    assert "Intake Day on 7 September" in rescue and "Of these, 163" in rescue  # "Of these" brings its antecedent


def test_answer_type_and_shared_words_raise_a_sentence(embedder) -> None:  # type: ignore[no-untyped-def]
    units = [u.text for u in split_units(DROP_OFF)[1]]
    assert len(units) == 3
    when = relevance(embedder, "When can I bring a bike to donate?", units)
    plain = embedder.embed(["When can I bring a bike to donate?", *units])
    similarity = [sum(a * b for a, b in zip(plain[0], v, strict=True)) for v in plain[1:]]
    assert when[1] - similarity[1] > when[0] - similarity[0]  # the sentence with days and times gains most
    assert max(range(3), key=lambda n: when[n]) == 1
