"""Word documents to Markdown: heading styles become headings, tables become Markdown tables."""

from __future__ import annotations

import io
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.archive import open_zip
from ingest.loaders.errors import LoadError
from ingest.text.reading import Reading


def load_docx(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    import docx
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    open_zip(raw, "docx").close()
    try:
        document: DocxDocument = docx.Document(io.BytesIO(raw))
    except Exception as exc:
        raise LoadError(f"corrupt or not a .docx file ({type(exc).__name__})") from exc

    lines: list[str] = []
    for block in document.iter_inner_content():
        if reading.full:
            break
        if isinstance(block, Paragraph):
            text = block.text.strip()
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            if style == "Title":
                lines.append(reading.take(f"# {text}"))
            elif style.startswith("Heading") and style[-1:].isdigit():
                lines.append(reading.take("#" * min(int(style.split()[-1]), 6) + f" {text}"))
            elif style.startswith("List"):
                lines.append(reading.take(f"- {text}"))
            else:
                lines.append(reading.take(text))
        elif isinstance(block, Table):
            lines.append(reading.take(_table_markdown(block, reading.left)))
    markdown = "\n\n".join(line for line in lines if line)
    if not markdown.strip():
        raise LoadError("no text in document")
    title = (document.core_properties.title or "").strip()
    if not title:
        title = next((line.lstrip("# ") for line in lines if line.startswith("#")), path.stem)
    return [Document(page_content=markdown, metadata={"title": title, "format": "markdown"})]


def _table_markdown(table: object, limit: int) -> str:
    """The table, its rows read until they hold `limit` characters: a merged cell repeats its text in every
    row it spans, so a small file can hold a huge table."""
    rows: list[list[str]] = []
    size = 0
    for row in table.rows:  # type: ignore[attr-defined]
        rows.append([cell.text for cell in row.cells])
        size += sum(len(text) for text in rows[-1])
        if size > limit:
            break
    return markdown_table(rows)


def markdown_table(cells: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table, the first row as its header (Word and PowerPoint tables)."""
    rows = [[text.strip().replace("\n", " ").replace("|", "\\|") for text in row] for row in cells]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)
