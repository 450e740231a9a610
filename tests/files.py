"""Small fixture files of every supported type, and broken ones, made on the fly."""

from __future__ import annotations

import io
from pathlib import Path


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
