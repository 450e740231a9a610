"""Spreadsheets (.xlsx by openpyxl, old binary .xls by xlrd): one document per visible sheet, its rows as
`column: value` lines like CSV rows.

The header is the first of the top rows whose filled cells are all text and span most of the table's width
(rows above it, such as a title in A1, are kept as lines of their own); without one, cells are named by their
column letter. Formulas read as the value the spreadsheet program last calculated (stored in the file; one
never calculated reads as empty).
Hidden sheets are skipped, and the file's ingest line says so. Rows are streamed (read-only mode), and a
workbook is cut after MAX_ROWS rows with a note in its line: past that, a table is a database's job, and its
embedding alone would take minutes on a CPU.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from ingest.loaders.archive import open_zip
from ingest.loaders.errors import LoadError

MAX_ROWS = 20_000  # filled rows per workbook; the rest is cut, and the ingest line says so
HEADER_SCAN = 10  # a header is looked for among this many filled rows at the top of a sheet


def load_xlsx(path: Path, raw: bytes) -> list[Document]:
    import openpyxl

    open_zip(raw, "xlsx").close()
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, ValueError, lxml errors... for a broken part
        raise LoadError(f"corrupt or not a .xlsx file ({type(exc).__name__})") from exc
    try:
        sheets = []
        for sheet in book.worksheets:
            sheet.reset_dimensions()  # rows as stored: a false <dimension> must not pad every row to 16,384 cells
            sheets.append((sheet.title, sheet.sheet_state == "visible", sheet.iter_rows(values_only=True)))
        return _documents(path, sheets, "xlsx")
    finally:
        book.close()


def load_xls(path: Path, raw: bytes) -> list[Document]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=raw, on_demand=True, logfile=io.StringIO())  # not stdout
    except Exception as exc:  # xlrd.XLRDError, struct and index errors for a truncated file
        if "encrypted" in str(exc).lower():
            raise LoadError("encrypted (password-protected) .xls file") from exc
        raise LoadError(f"corrupt or not a .xls file ({type(exc).__name__}: {str(exc)[:80]})") from exc
    try:
        sheets = []
        for index, name in enumerate(book.sheet_names()):
            sheet = book.sheet_by_index(index)
            sheets.append((name, sheet.visibility == 0, _xls_rows(sheet, book.datemode)))
        return _documents(path, sheets, "xls")
    finally:
        book.release_resources()


def _xls_rows(sheet: Any, datemode: int) -> Iterator[list[Any]]:
    for number in range(sheet.nrows):
        yield [_xls_value(cell, datemode) for cell in sheet.row(number)]


def _xls_value(cell: Any, datemode: int) -> Any:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "#ERROR")
    return cell.value


def _documents(path: Path, sheets: Iterable[tuple[str, bool, Iterable[Sequence[Any]]]], kind: str) -> list[Document]:
    """One document per visible sheet, the workbook cut after MAX_ROWS filled rows; `sheets` is read lazily."""
    title = path.stem.replace("_", " ").replace("-", " ")
    documents, hidden, left = [], [], MAX_ROWS
    cut = ""
    try:
        for name, visible, row_values in sheets:
            if not visible:
                hidden.append(name)
                continue
            rows, more = _filled_rows(row_values, left)
            left -= len(rows)
            if more:
                cut = f"cut after {MAX_ROWS:,} rows in sheet {name!r} (the limit per workbook)"
            if rows:
                text = f"# {name}\n\n" + "\n".join(records(rows))
                metadata = {"title": title, "location": f"sheet {name}", "format": "markdown"}
                documents.append(Document(page_content=text, metadata=metadata))
            if left <= 0:
                break
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"corrupt .{kind} file ({type(exc).__name__}: {str(exc)[:80]})") from exc
    return _with_note(documents, hidden, cut)


def _with_note(documents: list[Document], hidden: list[str], cut: str) -> list[Document]:
    skipped = f"{len(hidden)} hidden sheet{'s' if len(hidden) > 1 else ''} skipped ({', '.join(hidden)})"
    notes = [note for note in (skipped if hidden else "", cut) if note]
    if not documents:
        raise LoadError("no data in any visible sheet" + (f"; {notes[0]}" if notes else ""))
    if notes:
        documents[0].metadata["note"] = "; ".join(notes)
    return documents


def _filled_rows(rows: Iterable[Sequence[Any]], limit: int) -> tuple[list[list[str]], bool]:
    """Rows with at least one filled cell, as text, and whether more were left after `limit`."""
    out: list[list[str]] = []
    for row in rows:
        cells = [cell_text(value) for value in row]
        if any(cells):
            if len(out) >= limit:
                return out, True
            out.append(cells)
    return out, False


def records(rows: list[list[str]]) -> list[str]:
    """`column: value; column: value` per row below the header; rows above the header as they are."""
    from openpyxl.utils import get_column_letter

    top = header_index(rows)
    header = rows[top] if top is not None else []
    names = [header[i] if i < len(header) and header[i] else get_column_letter(i + 1) for i in range(_width(rows))]
    lines = ["; ".join(cell for cell in row if cell) for row in rows[: top or 0]]
    for row in rows[(top + 1 if top is not None else 0) :]:
        lines.append("; ".join(f"{name}: {cell}" for name, cell in zip(names, row, strict=False) if cell))
    return lines


def header_index(rows: list[list[str]]) -> int | None:
    """The header among the top rows: all its filled cells text (not numbers or dates), covering at least half
    the table's width, and a row below it. None when there is none."""
    top = rows[:HEADER_SCAN]
    width = max((_filled(r) for r in top), default=0)
    for n, row in enumerate(top[: len(rows) - 1]):
        texts = [cell for cell in row if cell]
        if texts and all(_is_label(cell) for cell in texts) and len(texts) * 2 >= width:
            return n
    return None


def cell_text(value: Any) -> str:
    """A cell as one line: whole floats without ".0", dates without a midnight time, no line breaks."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.15g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).split())


def _is_label(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return not (len(text) >= 8 and text[:4].isdigit() and text[4] == "-")  # not an ISO date either
    return False


def _filled(row: list[str]) -> int:
    return sum(1 for cell in row if cell)


def _width(rows: list[list[str]]) -> int:
    return max((max((i + 1 for i, cell in enumerate(r) if cell), default=0) for r in rows), default=0)
