"""Small fixture files of every supported type, and broken ones, made on the fly."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

# Filler for generated documents (the benchmarks' folders): sentences of harbour words, none of them a fact.
WORDS = (
    "harbour tide ledger beacon crane hull mooring quay pilot buoy cargo manifest survey gauge anchor vessel "
    "ferry dock rope signal channel keel rudder ballast berth jetty lantern chart compass current"
).split()


def filler(rng: random.Random, sentences: int) -> str:
    return " ".join(" ".join(rng.choices(WORDS, k=12)).capitalize() + "." for _ in range(sentences))


def write_pdf(path: Path, pages: list[str], title: str | None = None, password: str | None = None) -> Path:
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    if title:
        pdf.setTitle(title)
    for text in pages:
        y = 800
        for line in text.splitlines():
            pdf.drawString(60, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    data = buffer.getvalue()
    if password:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    path.write_bytes(data)
    return path


def write_docx(path: Path, title: str, sections: dict[str, str], table: list[list[str]] | None = None) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, body in sections.items():
        document.add_heading(heading, level=2)
        document.add_paragraph(body)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


def write_corpus(folder: Path) -> dict[str, Path]:
    """One good file of each type, in doc-type subfolders, with distinctive facts to search for."""
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    (folder / "manuals").mkdir(exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    files = {
        "md": folder / "notes" / "garden.md",
        "txt": folder / "notes" / "weather.txt",
        "html": folder / "notes" / "recipe.html",
        "pdf": folder / "manuals" / "pump.pdf",
        "docx": folder / "manuals" / "kettle.docx",
        "csv": folder / "data" / "prices.csv",
    }
    files["md"].write_text(
        "# Garden Handbook\n\nIntro to the allotment.\n\n## Tomatoes\n\n"
        "Water the tomatoes every morning with 2 litres each. The variety Zorblat Crimson ripens in August.\n\n"
        "## Compost\n\nTurn the compost heap every fortnight.\n",
        encoding="utf-8",
    )
    files["txt"].write_text(
        "Weather log\n\nThe barometer in the shed read 1031 hPa on the day of the quokka parade.\n",
        encoding="utf-8",
    )
    files["html"].write_text(
        "<html><head><title>Lentil Soup</title><script>var tracking = 1;</script></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/menu'>Menu navigation link</a></nav>"
        "<main><h1>Lentil Soup</h1><h2>Ingredients</h2><ul><li>200 g red lentils</li><li>one onion</li></ul>"
        "<h2>Method</h2><p>Simmer for 25 minutes with smoked paprika from Valdorria.</p></main>"
        "<footer>Copyright footer text</footer></body></html>",
        encoding="utf-8",
    )
    write_pdf(
        files["pdf"],
        [
            "Pump Manual\nInstallation of the pump.",
            "Maintenance\nReplace the impeller gasket (part QX-7781) every 900 hours.",
        ],
        title="Pump Manual",
    )
    write_docx(
        files["docx"],
        "Kettle Guide",
        {"Descaling": "Descale the kettle monthly with citric acid.", "Warranty": "The warranty lasts 27 months."},
        table=[["Model", "Watts"], ["K-200", "2200"]],
    )
    files["csv"].write_text("item,price,unit\nflour,2.40,kg\nsaffron threads,14.90,gram\n", encoding="utf-8")
    return files


def write_pptx(path: Path, slides: list[dict[str, object]], title: str | None = None) -> Path:
    """A deck: each slide a dict of `title`, `bullets` (list; a tuple (level, text) indents), `table` (rows),
    `notes`. The first slide uses the title layout, the rest title-and-content."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    if title:
        deck.core_properties.title = title
    for n, spec in enumerate(slides):
        slide = deck.slides.add_slide(deck.slide_layouts[0 if n == 0 else 1])
        if spec.get("title"):
            slide.shapes.title.text = str(spec["title"])
        body = slide.placeholders[1]
        frame = body.text_frame
        for i, bullet in enumerate(spec.get("bullets", [])):  # type: ignore[attr-defined]
            level, text = bullet if isinstance(bullet, tuple) else (0, bullet)
            paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
            paragraph.text, paragraph.level = text, level
        rows = spec.get("table")
        if rows:
            grid = slide.shapes.add_table(len(rows), len(rows[0]), Inches(1), Inches(5), Inches(6), Inches(1)).table  # type: ignore[arg-type]
            for r, row in enumerate(rows):  # type: ignore[arg-type]
                for c, value in enumerate(row):
                    grid.cell(r, c).text = value
        if spec.get("notes"):
            slide.notes_slide.notes_text_frame.text = str(spec["notes"])
    deck.save(str(path))
    return path


def write_xlsx(
    path: Path,
    sheets: dict[str, list[list[object]]],
    hidden: tuple[str, ...] = (),
    cached: dict[str, object] | None = None,
) -> Path:
    """A workbook of `sheets` (name → rows), some of them hidden. A formula cell ("=...") gets the value in
    `cached` (by cell reference, e.g. "B4") stored as its last calculated result, as a spreadsheet program would
    (openpyxl writes formulas without one)."""
    import re
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        if name in hidden:
            sheet.sheet_state = "hidden"
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    if cached:
        source = zipfile.ZipFile(io.BytesIO(data))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                content = source.read(info)
                if info.filename.startswith("xl/worksheets/sheet"):
                    text = content.decode()
                    for ref, value in cached.items():
                        text = re.sub(
                            rf'(<c r="{ref}"[^>]*>\s*<f>[^<]*</f>)\s*(<v\s*/>|<v></v>)?', rf"\1<v>{value}</v>", text
                        )
                    content = text.encode()
                target.writestr(info, content)
        data = out.getvalue()
    path.write_bytes(data)
    return path


def write_epub(path: Path, title: str, chapters: list[tuple[str, str]], drm: bool = False) -> Path:
    """An EPUB 3 of (heading, paragraph text) chapters; the spine lists them in an order other than their file
    names' (reading order must come from the spine), after the table of contents (nav.xhtml), as generators
    often do. `drm` adds an encryption.xml naming the chapters."""
    import zipfile

    names = [f"text/part-{len(chapters) - n:02d}.xhtml" for n in range(len(chapters))]
    manifest = "".join(
        f'<item id="c{n}" href="{name}" media-type="application/xhtml+xml"/>' for n, name in enumerate(names)
    )
    manifest += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    spine = '<itemref idref="nav"/>' + "".join(f'<itemref idref="c{n}"/>' for n in range(len(chapters)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        book.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        book.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
            f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            f'<dc:identifier id="id">urn:uuid:0</dc:identifier></metadata><manifest>{manifest}</manifest>'
            f"<spine>{spine}</spine></package>",
        )
        links = "".join(f'<li><a href="{n}">{c[0]}</a></li>' for n, c in zip(names, chapters, strict=True))
        book.writestr(
            "OEBPS/nav.xhtml",
            '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
            'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Contents</title></head><body>'
            f'<nav epub:type="toc"><h1>Contents</h1><ol>{links}</ol></nav></body></html>',
        )
        for name, (heading, text) in zip(names, chapters, strict=True):
            paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
            book.writestr(
                f"OEBPS/{name}",
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{heading}</title></head><body><section><h1>{heading}</h1>{paragraphs}</section>"
                "</body></html>",
            )
        if drm:
            refs = "".join(
                f'<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"><CipherData>'
                f'<CipherReference URI="OEBPS/{name}"/></CipherData></EncryptedData>'
                for name in names
            )
            book.writestr(
                "META-INF/encryption.xml",
                f'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">{refs}</encryption>',
            )
    return path


def write_xls(path: Path, sheets: dict[str, list[list[object]]], hidden: tuple[str, ...] = ()) -> Path:
    """An old binary (BIFF8) workbook; dates get a date format, as a spreadsheet program stores them."""
    import datetime as dt

    import xlwt

    book = xlwt.Workbook()
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for name, rows in sheets.items():
        sheet = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.date):
                    sheet.write(r, c, value, date_style)
                elif value is not None:
                    sheet.write(r, c, value)
        if name in hidden:
            sheet.visibility = 1
    book.save(str(path))
    return path


def flip_a_byte(path: Path, restore_mtime: bool) -> None:
    """One byte flipped in place: same file, same size, and (if asked) the same modification time."""
    before = path.stat()
    with path.open("r+b") as f:
        f.seek(before.st_size // 2)
        byte = f.read(1)
        f.seek(before.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    if restore_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert (after.st_mtime_ns == before.st_mtime_ns) == restore_mtime
