"""Excerpts for local models: the sentences that bear on the question, within budget, still readable."""

from __future__ import annotations

from tools.excerpts import focus, split_units

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
    assert [u.text for u in rows][1:] == [
        "| Tier | Price |",
        "| Day Pass | $8 per visit |",
        "| Family | $70 per year |",
        "| Sustaining | $120 per year |",
    ]
    assert rows[3].table_head == 1 and rows[1].table_head is None


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
    assert "…" in bikes

    family = focus(embedder, "How much is a Family membership?", texts, 150)[1]
    assert "| Family | $70 per year |" in family and "| Tier | Price |" in family  # a row brings its header
    assert "**" not in family


def test_focus_leaves_short_passages_whole(embedder) -> None:  # type: ignore[no-untyped-def]
    out = focus(embedder, "anything", [BIKES], 5000)
    assert out[0].splitlines()[1:] == [
        "Refurbished bikes are checked by two mechanics before sale. Every bike comes with a free first service. "
        "Prices start at $60 for a child's bike. Adult bikes cost between $90 and $250 depending on the frame."
    ]
    assert focus(embedder, "anything", [], 100) == []
    assert focus(embedder, "anything", ["Only a heading"], 100) == ["Only a heading"]
