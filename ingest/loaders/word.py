"""Word documents to Markdown: heading styles become headings, tables become Markdown tables."""

from __future__ import annotations

import io
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.archive import open_zip
from ingest.loaders.errors import LoadError


def load_docx(path: Path, raw: bytes) -> list[Document]:
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
        if isinstance(block, Paragraph):
            text = block.text.strip()
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            if style == "Title":
                lines.append(f"# {text}")
            elif style.startswith("Heading") and style[-1:].isdigit():
                lines.append("#" * min(int(style.split()[-1]), 6) + f" {text}")
            elif style.startswith("List"):
                lines.append(f"- {text}")
            else:
                lines.append(text)
        elif isinstance(block, Table):
            lines.append(_table_markdown(block))
    markdown = "\n\n".join(line for line in lines if line)
    if not markdown.strip():
        raise LoadError("no text in document")
    title = (document.core_properties.title or "").strip()
    if not title:
        title = next((line.lstrip("# ") for line in lines if line.startswith("#")), path.stem)
    return [Document(page_content=markdown, metadata={"title": title, "format": "markdown"})]


def _table_markdown(table: object) -> str:
    return markdown_table([[cell.text for cell in row.cells] for row in table.rows])  # type: ignore[attr-defined]


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
