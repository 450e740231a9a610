"""CSV rows as `column: value` lines, so each chunk stays readable and searchable without its header row.

Rows are read one at a time and each line taken from the file's character budget: a header of long names
repeated on every row must not grow a small file past it before the check."""

from __future__ import annotations

import csv as csv_module
import io
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import decode
from ingest.text.reading import Reading


def load_csv(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    text, encoding = decode(raw)
    try:
        dialect = csv_module.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv_module.Error:
        dialect = csv_module.excel
    rows = (r for r in csv_module.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in r))
    records: list[str] = []
    try:
        header = [h.strip() or f"column {i + 1}" for i, h in enumerate(next(rows, []))]
        for row in rows:
            names = header + [f"column {i + 1}" for i in range(len(header), len(row))]
            fields = [f"{name}: {value.strip()}" for name, value in zip(names, row, strict=False) if value.strip()]
            records.append(reading.take("; ".join(fields) + "\n"))
            if reading.full:
                break
    except csv_module.Error as exc:  # a field past the csv module's limit, a NUL byte
        raise LoadError(f"not a readable CSV file (line {len(records) + 2}: {exc})") from exc
    if not records:
        raise LoadError("CSV has no data rows")
    return [
        Document(
            page_content="".join(records).rstrip("\n"),
            metadata={"title": path.stem.replace("_", " ").replace("-", " "), "format": "rows", "encoding": encoding},
        )
    ]
