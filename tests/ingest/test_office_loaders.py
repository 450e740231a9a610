"""PowerPoint, Excel and EPUB files, generated here: read slide by slide, sheet by sheet, chapter by chapter,
found by search and cited by slide, sheet and chapter; hostile ones refused with one line each."""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

import pytest
from langchain_core.documents import Document

from ingest import IngestConfig, build_ingestor
from ingest.loaders import LoadError, load
from ingest.text.reading import Reading
from knowledge_base import KnowledgeBase
from tests.support.files import write_epub, write_pptx, write_xls, write_xlsx
from tests.support.stored import stored_texts

DECK = [
    {"title": "Quarterly Review", "bullets": ["Prepared by the harbour office"]},
    {
        "title": "Ferry Numbers",
        "bullets": ["Passengers rose 12 percent", (1, "the Pier 9 route led the rise")],
        "table": [["Route", "Riders"], ["Pier 9", "41,200"]],
        "notes": "Mention the storm closure on 3 March.",
    },
    {"title": "Outlook", "bullets": ["A new hull was ordered from the Varnholm shipyard"]},
]
BUDGET = [
    ["Harbour budget 2026"],
    [],
    ["Item", "Cost", "Owner"],
    ["Pier paint", 1200.5, "Ana"],
    ["Mooring rope", 80, "Ben"],
    ["Total", "=SUM(B4:B5)", None],
]
CHAPTERS = [
    ("Arrival", "The keeper arrived in autumn.\n\nHe counted 212 steps to the lamp room."),
    ("The Storm", "A storm cracked the lens of the Skerry light on the night of the equinox."),
    ("Departure", "He left in spring."),
]


def _load(path: Path) -> list[Document]:
    return load(path, path.read_bytes())


def _xlsx(path: Path) -> Path:
    sheets = {"Budget": BUDGET, "Secret": [["Key", "Value"], ["vault code", 4321]], "Log": [[5, "no header here"]]}
    return write_xlsx(path, sheets, hidden=("Secret",), cached={"B6": 1280.5})


def test_pptx_one_document_per_slide_with_title_table_and_notes(tmp_path: Path) -> None:
    docs = _load(write_pptx(tmp_path / "deck.pptx", DECK, title="Harbour Review"))
    assert [d.metadata["location"] for d in docs] == ["slide 1", "slide 2", "slide 3"]
    assert {d.metadata["title"] for d in docs} == {"Harbour Review"}
    second = docs[1].page_content
    assert second.startswith("# Ferry Numbers\n\nPassengers rose 12 percent\n- the Pier 9 route led the rise")
    assert "| Route | Riders |\n|---|---|\n| Pier 9 | 41,200 |" in second
    body, _, notes = second.partition("## Speaker notes")
    assert "storm closure" in notes and "storm closure" not in body


def test_pptx_title_falls_back_to_the_first_slide_title(tmp_path: Path) -> None:
    docs = _load(write_pptx(tmp_path / "untitled.pptx", DECK))
    assert docs[0].metadata["title"] == "Quarterly Review"


def test_xlsx_sheets_rows_header_formulas_and_hidden_sheets(tmp_path: Path) -> None:
    docs = _load(_xlsx(tmp_path / "harbour.xlsx"))
    assert [d.metadata["location"] for d in docs] == ["sheet Budget", "sheet Log"]
    budget = docs[0].page_content.splitlines()
    assert budget[0] == "# Budget"
    assert "Harbour budget 2026" in budget  # the title row above the header, kept as it is
    assert "Item: Pier paint; Cost: 1200.5; Owner: Ana" in budget
    assert "Item: Total; Cost: 1280.5" in budget  # the formula's last calculated value
    assert "A: 5; B: no header here" in docs[1].page_content  # no header row: cells named by column letter
    assert "vault code" not in "".join(d.page_content for d in docs)
    assert docs[0].metadata["note"] == "1 hidden sheet skipped (Secret)"


def _xls(path: Path) -> Path:
    tides = [["date", "high water", "port"], [dt.date(2026, 3, 3), 4.25, "Skerry"], [dt.date(2026, 3, 4), 3.5, "Vardø"]]
    return write_xls(path, {"Tides": tides, "Old": [["note"], ["archived pilot roster"]]}, hidden=("Old",))


def test_xls_sheets_rows_dates_and_hidden_sheets(tmp_path: Path) -> None:
    [doc] = _load(_xls(tmp_path / "tides.xls"))
    assert doc.metadata["location"] == "sheet Tides" and doc.metadata["note"] == "1 hidden sheet skipped (Old)"
    assert doc.page_content.splitlines()[2:] == [
        "date: 2026-03-03; high water: 4.25; port: Skerry",
        "date: 2026-03-04; high water: 3.5; port: Vardø",
    ]


def test_xlsx_with_every_sheet_hidden_says_so(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "hidden.xlsx", {"Shown": [[None]], "Away": [["a", "b"], [1, 2]]}, hidden=("Away",))
    with pytest.raises(LoadError, match=r"no data in any visible sheet; 1 hidden sheet skipped \(Away\)"):
        _load(path)


def test_50000_row_sheet_is_cut_at_the_row_limit_with_one_line(tmp_path: Path) -> None:
    import openpyxl

    from ingest.loaders import sheets

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Readings")
    sheet.append(["station", "reading", "unit"])
    for n in range(50_000):
        sheet.append([f"S{n}", n * 0.5, "hPa"])
    book.save(tmp_path / "big.xlsx")
    reading = Reading()
    docs = load(tmp_path / "big.xlsx", (tmp_path / "big.xlsx").read_bytes(), reading)
    lines = docs[0].page_content.splitlines()
    assert len(lines) == 2 + sheets.MAX_ROWS - 1  # the heading, a blank line, the rows but the header
    assert lines[-1] == f"station: S{sheets.MAX_ROWS - 2}; reading: {(sheets.MAX_ROWS - 2) * 0.5:g}; unit: hPa"
    assert reading.cuts == ["cut after 20,000 rows in sheet 'Readings' (the limit per workbook)"]


def test_false_sheet_dimension_does_not_pad_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sheet claiming 16,384 columns and a million rows reads as the cells it has, not as 16,384 per row."""
    from ingest.loaders import sheets

    seen: list[object] = []
    real_cell_text = sheets.cell_text
    monkeypatch.setattr(sheets, "cell_text", lambda value: seen.append(value) or real_cell_text(value))
    path = write_xlsx(tmp_path / "wide.xlsx", {"Data": [["name", "value"], ["tide", 3]]})
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    sheet_xml = parts["xl/worksheets/sheet1.xml"].decode()
    assert '<dimension ref="A1:B2"/>' in sheet_xml
    parts["xl/worksheets/sheet1.xml"] = sheet_xml.replace("A1:B2", "A1:XFD1048576").encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    [doc] = _load(path)
    assert doc.page_content == "# Data\n\nname: tide; value: 3"
    assert len(seen) == 4


def test_epub_chapters_in_spine_order(tmp_path: Path) -> None:
    docs = _load(write_epub(tmp_path / "keeper.epub", "The Lighthouse Keeper", CHAPTERS))
    assert [d.metadata["location"] for d in docs] == ["chapter 1", "chapter 2", "chapter 3"]
    assert [d.page_content.splitlines()[0] for d in docs] == ["# Arrival", "# The Storm", "# Departure"]
    assert "212 steps" in docs[0].page_content
    assert {d.metadata["title"] for d in docs} == {"The Lighthouse Keeper"}


def _mail_with_attachments(folder: Path) -> bytes:
    """A message with a workbook, a deck, a corrupt PDF (its name a path) and an attached message attached."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"], message["From"] = "Crew list and slides", "ada@example.org"
    message.set_content("Both attached, see you Monday.")
    crew = write_xlsx(folder / "crew.tmp", {"Crew": [["name", "boat"], ["Marit Olsen", "Kestrel"]]}).read_bytes()
    message.add_attachment(crew, maintype="application", subtype="octet-stream", filename="crew.xlsx")
    slides = [{"title": "Rota", "bullets": ["Shifts change at noon"]}, {"title": "Boats", "bullets": ["Two"]}]
    deck = write_pptx(folder / "deck.tmp", slides).read_bytes()
    message.add_attachment(deck, maintype="application", subtype="octet-stream", filename="review.pptx")
    message.add_attachment(b"%PDF-1.4 broken", maintype="application", subtype="pdf", filename="../../rota.pdf")
    message.add_attachment(b"From: x\n\nnested", maintype="message", subtype="rfc822", filename="fwd.eml")
    (folder / "crew.tmp").unlink()
    (folder / "deck.tmp").unlink()
    return message.as_bytes()


def test_mail_attachments_read_into_the_message_source_cited_by_name(tmp_path: Path) -> None:
    path = tmp_path / "crew.eml"
    path.write_bytes(_mail_with_attachments(tmp_path))
    docs = _load(path)
    assert [d.metadata.get("location") for d in docs] == [
        None,
        "attachment crew.xlsx, sheet Crew",
        "attachment review.pptx, slide 1",
        "attachment review.pptx, slide 2",
    ]
    assert docs[0].metadata["title"] == "Crew list and slides"
    assert docs[0].metadata["note"].startswith("attachment rota.pdf not read: corrupt PDF")
    assert docs[1].page_content == "# Attachment crew.xlsx (sheet Crew)\n\n## Crew\n\nname: Marit Olsen; boat: Kestrel"


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _bomb_pptx(path: Path) -> bytes:
    """A real deck plus a member that inflates to 220 MB from a few hundred kB."""
    write_pptx(path, DECK[:1])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ppt/media/zeros.bin", b"\0" * (220 * 2**20))
    return path.read_bytes()


def _encrypted_xlsx() -> bytes:
    """What Office writes for a password-protected workbook: an OLE compound file around the encrypted zip."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + os.urandom(4096)


def _hostile(folder: Path) -> dict[str, str]:
    """Hostile files of the new types: file name → words its one line must contain."""
    folder.mkdir(parents=True)
    good = {
        "deck.pptx": write_pptx(folder / "deck.pptx", DECK).read_bytes(),
        "book.xlsx": _xlsx(folder / "book.xlsx").read_bytes(),
        "keeper.epub": write_epub(folder / "keeper.epub", "Keeper", CHAPTERS).read_bytes(),
        "tides.xls": _xls(folder / "tides.xls").read_bytes(),
    }
    (folder / "crew.eml").write_bytes(_mail_with_attachments(folder))
    files = {
        "truncated.pptx": (_truncated(good["deck.pptx"]), "corrupt or truncated .pptx"),
        "truncated.xlsx": (_truncated(good["book.xlsx"]), "corrupt or truncated .xlsx"),
        "truncated.epub": (_truncated(good["keeper.epub"]), "corrupt or truncated .epub"),
        "truncated.xls": (_truncated(good["tides.xls"]), "corrupt or not a .xls"),
        "xlsx-named.xls": (write_xlsx(folder / "x.tmp", {"A": [["a"], [1]]}).read_bytes(), "corrupt or not a .xls"),
        "encrypted.xlsx": (_encrypted_xlsx(), "encrypted (password-protected)"),
        "bomb.pptx": (_bomb_pptx(folder / "template.pptx"), "zip bomb"),
        "drm.epub": (write_epub(folder / "drm.tmp", "Locked", CHAPTERS, drm=True).read_bytes(), "drm-protected"),
        "text-in-disguise.xlsx": (b"just some words, not a workbook", "not a .xlsx"),
        "empty-zip.epub": (_empty_zip(), "corrupt or not an .epub"),
    }
    (folder / "template.pptx").unlink()
    (folder / "drm.tmp").unlink()
    (folder / "x.tmp").unlink()
    expect = {}
    for name, (data, reason) in files.items():
        (folder / name).write_bytes(data)
        expect[name] = reason
    return expect


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "no container here")
    return buffer.getvalue()


@pytest.mark.slow
def test_office_files_end_to_end_cited_by_slide_sheet_and_chapter(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    from tools.knowledge_search import Passages, format_passages, search_passages
    from ui.chat_format import passages_markdown, sources_markdown

    root = tmp_path / "kb"
    expect = _hostile(root)
    report = build_ingestor(IngestConfig(), embedded_kb).run([root])
    outcomes = {Path(o.source).name: o for o in report.outcomes}
    for name, reason in expect.items():  # each hostile file: one line saying why
        assert outcomes[name].status == "failed", (name, outcomes[name])
        assert reason.lower() in outcomes[name].message.lower(), (name, outcomes[name])
        assert "\n" not in outcomes[name].message
    assert {n: o.status for n, o in outcomes.items() if n not in expect} == dict.fromkeys(
        ["deck.pptx", "book.xlsx", "keeper.epub", "tides.xls", "crew.eml"], "added"
    )
    assert outcomes["book.xlsx"].notes == ["1 hidden sheet skipped (Secret)"]
    assert outcomes["crew.eml"].notes[0].startswith("attachment rota.pdf not read: corrupt PDF")

    cases = {
        "how many riders on the Pier 9 ferry route": ("deck.pptx", "41,200", "slide 2"),
        "what does the mooring rope cost": ("book.xlsx", "Cost: 80", "sheet Budget"),
        "what cracked the lens of the Skerry light": ("keeper.epub", "equinox", "chapter 2"),
        "what should the talk mention about the storm closure": ("deck.pptx", "3 March", "slide 2"),
        "when is high water at Vardø": ("tides.xls", "2026-03-04", "sheet Tides"),
        "which boat does Marit Olsen sail on": ("crew.eml", "Kestrel", "attachment crew.xlsx, sheet Crew"),
    }
    registry = Passages()
    for query, (name, fact, where) in cases.items():
        [top] = search_passages(embedded_kb, registry, query, k=1)
        assert Path(top.source).name == name and fact in top.text, (query, top)
        assert top.location == where and top.label.endswith(f"{name} ({where})"), top.label
    assert not [text for text in stored_texts(embedded_kb) if "vault code" in text]  # the hidden sheet

    passages = registry.all()
    compact = format_passages(passages, compact=True)
    assert "[1] (slide 2) " in compact and "(sheet Budget)" in compact and "(chapter 2)" in compact
    shown = passages_markdown(passages, {})
    assert "(sheet Budget)" in shown and "(chapter 2)" in shown and "(attachment crew.xlsx, sheet Crew)" in shown
    assert " · sheet Budget · " in sources_markdown([p for p in passages if p.location == "sheet Budget"])


@pytest.mark.slow
def test_cli_notes_the_hidden_sheet_and_cites_the_slide(tmp_path: Path) -> None:
    from tests.support.cli import kbagent

    data, folder = tmp_path / "data", tmp_path / "kb"
    folder.mkdir()
    write_pptx(folder / "deck.pptx", DECK)
    _xlsx(folder / "book.xlsx")
    run = kbagent("ingest", str(folder), data=data)
    assert run.returncode == 0, run.stderr
    assert "note    book.xlsx: 1 hidden sheet skipped (Secret)" in run.stdout
    found = kbagent("search", "riders on the Pier 9 ferry route", "-k", "1", data=data)
    assert "deck.pptx (slide 2)" in found.stdout, found.stdout


def test_places_shown_in_terminal_sources_and_app_ingest_report() -> None:
    """The chat's source lines carry a passage's place (a PDF page still as "p. N"); the app's ingest report
    carries a file's note."""
    from rich.console import Console

    from agent.events import Done, Sources
    from ingest.report import IngestReport, Outcome
    from kbagent.chat_view import TerminalRenderer
    from tools.knowledge_search import Passage
    from ui.knowledge_format import report_markdown

    console = Console(record=True, width=200)
    render = TerminalRenderer(console)
    deck = Passage(1, "c1", "Review", "/kb/deck.pptx", "41,200 riders", location="slide 2")
    manual = Passage(2, "c2", "Pump", "/kb/pump.pdf", "gasket", 3)
    render(Sources(cited=[deck, manual]))
    render(Done("41,200 riders [1], gasket [2].", "t1", "openai:x", 0.1))
    text = console.export_text()
    assert "Review — /kb/deck.pptx (slide 2)" in text and "Pump — /kb/pump.pdf (p. 3)" in text
    report = IngestReport([Outcome("/kb/book.xlsx", "added", chunks=4, notes=["1 hidden sheet skipped (Secret)"])])
    assert "added, 4 chunks\n  - ⚠ 1 hidden sheet skipped (Secret)" in report_markdown(report)
