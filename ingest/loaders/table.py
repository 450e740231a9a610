"""CSV rows as `column: value` lines, so each chunk stays readable and searchable without its header row."""

from __future__ import annotations

import csv as csv_module
import io
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import decode


def load_csv(path: Path, raw: bytes) -> list[Document]:
    text, encoding = decode(raw)
    try:
        dialect = csv_module.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv_module.Error:
        dialect = csv_module.excel
    rows = list(csv_module.reader(io.StringIO(text), dialect))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise LoadError("CSV has no data rows")
    header = [h.strip() or f"column {i + 1}" for i, h in enumerate(rows[0])]
    records = []
    for row in rows[1:]:
        names = header + [f"column {i + 1}" for i in range(len(header), len(row))]
        fields = [f"{name}: {value.strip()}" for name, value in zip(names, row, strict=False) if value.strip()]
        records.append("; ".join(fields))
    body = "\n".join(records)
    return [
        Document(
            page_content=body,
            metadata={"title": path.stem.replace("_", " ").replace("-", " "), "format": "rows", "encoding": encoding},
        )
    ]
