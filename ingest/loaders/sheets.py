"""Spreadsheets (.xlsx by openpyxl, old binary .xls by xlrd): one document per visible sheet, its rows as
`column: value` lines like CSV rows.

The header is the first of the top rows whose filled cells are all text and span most of the table's width
(rows above it, such as a title in A1, are kept as lines of their own); without one, cells are named by their
column letter. Formulas read as the value the spreadsheet program last calculated (stored in the file; one
never calculated reads as empty).
Hidden sheets are skipped, and the file's ingest line says so. Rows are streamed (read-only mode) and kept
ragged, only their filled cells: one cell in column XFD per row must not make 16,384 cells of every row. A
workbook is cut after MAX_ROWS rows, a row after MAX_CELLS filled cells, cell text after MAX_CELL characters,
each with a note in its line: past that, a table is a database's job, and its embedding alone would take
minutes on a CPU.
Every cell is taken from the file's character budget as it is read, so one long shared string that every cell
points at stops the reading there.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.documents import Document

from ingest.loaders.archive import open_zip
from ingest.loaders.errors import LoadError, said
from ingest.text.reading import Reading

if TYPE_CHECKING:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet
    from xlrd.book import Book
    from xlrd.sheet import Cell, Sheet

MAX_ROWS = 20_000  # filled rows per workbook; the rest is cut, and the ingest line says so
MAX_CELLS = 1024  # filled cells of a row; the rest of the row is left out, with a note
MAX_CELL = 32_767  # characters of a cell's text: the most a spreadsheet program lets a cell hold
HEADER_SCAN = 10  # a header is looked for among this many filled rows at the top of a sheet

Row = dict[int, str]
"""A row's filled cells: column index (0 for A) → text, left to right."""
Cells = Iterable[tuple[int, object]]
"""A stored row's cells as (column index, value: text, number, bool, date or time, None; see `cell_text`)."""
Sheets = Iterable[tuple[str, bool, Iterable[Cells]]]
"""(name, visible, rows) per sheet, in the workbook's order."""


def load_xlsx(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    import openpyxl

    open_zip(raw, "xlsx").close()
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises KeyError, ValueError, lxml errors... for a broken part
        raise LoadError(f"corrupt or not a .xlsx file ({type(exc).__name__})") from exc
    try:
        sheets = [(sheet.title, sheet.sheet_state == "visible", _xlsx_rows(sheet)) for sheet in book.worksheets]
        return _documents(path, sheets, "xlsx", reading)
    finally:
        book.close()


def _xlsx_rows(sheet: ReadOnlyWorksheet) -> Iterator[Cells]:
    """The sheet's rows as stored, each only its cells. openpyxl's iter_rows pads every row to its last cell (and
    to the sheet's <dimension>), so this drives the parser iter_rows uses, as iter_rows itself does."""
    from openpyxl.worksheet._reader import WorkSheetParser

    book = sheet.parent
    with sheet._get_source() as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=book.data_only,
            epoch=book.epoch,
            date_formats=book._date_formats,
            timedelta_formats=book._timedelta_formats,
        )
        for _, cells in parser.parse():
            yield ((cell["column"] - 1, cell["value"]) for cell in cells)


def load_xls(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=raw, on_demand=True, logfile=io.StringIO())  # not stdout
    except Exception as exc:  # xlrd.XLRDError, struct and index errors for a truncated file
        if "encrypted" in str(exc).lower():
            raise LoadError("encrypted (password-protected) .xls file") from exc
        raise LoadError(f"corrupt or not a .xls file ({said(exc)})") from exc
    try:
        return _documents(path, _xls_sheets(book), "xls", reading)
    finally:
        book.release_resources()


def _xls_sheets(book: Book) -> Sheets:
    """Each sheet, parsed only when the reader gets to it (xlrd raises bare AssertionErrors for a broken one)."""
    for index, name in enumerate(book.sheet_names()):
        sheet = book.sheet_by_index(index)
        yield name, sheet.visibility == 0, _xls_rows(sheet, book.datemode)


def _xls_rows(sheet: Sheet, datemode: int) -> Iterator[Cells]:
    for number in range(sheet.nrows):
        yield ((column, _xls_value(cell, datemode)) for column, cell in enumerate(sheet.row(number)))


def _xls_value(cell: Cell, datemode: int) -> object:
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


def _documents(path: Path, sheets: Sheets, kind: str, reading: Reading) -> list[Document]:
    """One document per visible sheet, the workbook cut after MAX_ROWS filled rows or once the file's character
    budget is spent; `sheets` is read lazily."""
    title = path.stem.replace("_", " ").replace("-", " ")
    documents, hidden, left = [], [], MAX_ROWS
    cuts: list[str] = []
    try:
        for name, visible, stored in sheets:
            if not visible:
                hidden.append(name)
                continue
            rows, cut_here = _filled_rows(stored, left, reading.left)
            left -= len(rows)
            cuts += [f"{what} in sheet {name!r}{why}" for what, why in cut_here]
            if rows:
                lines = [reading.take(f"# {name}\n")]
                for line in records(rows):
                    lines.append(reading.take(line))
                    if reading.full:
                        break
                metadata = {"title": title, "location": f"sheet {name}", "format": "markdown", "grid": Grid(rows)}
                documents.append(Document(page_content="\n".join(lines), metadata=metadata))
            if left <= 0 or reading.full:
                break
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"corrupt .{kind} file ({said(exc)})") from exc
    for cut in cuts:
        reading.cut(cut)
    return _with_note(documents, hidden)


class Grid:
    """A sheet's rows as read (what the viewer shows as a table): line n of the sheet's text (after its
    heading) is row `row_of_line(n)`. Kept on the sheet's document only, never in a chunk."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.header = header_index(rows)

    def row_of_line(self, line: int) -> int:
        above = self.header or 0
        return line if line < above or self.header is None else line + 1


def _with_note(documents: list[Document], hidden: list[str]) -> list[Document]:
    skipped = f"{len(hidden)} hidden sheet{'s' if len(hidden) > 1 else ''} skipped ({', '.join(hidden)})"
    if not documents:
        raise LoadError("no data in any visible sheet" + (f"; {skipped}" if hidden else ""))
    if hidden:
        documents[0].metadata["note"] = skipped
    return documents


def _filled_rows(stored: Iterable[Cells], limit: int, chars: int) -> tuple[list[Row], list[tuple[str, str]]]:
    """Rows with at least one filled cell, ragged, read until `limit` rows or `chars` characters; and what
    was cut, as (what, why) pairs."""
    out: list[Row] = []
    cuts: dict[tuple[str, str], None] = {}
    size = 0
    for cells in stored:
        row: Row = {}
        for column, value in cells:
            if len(row) >= MAX_CELLS:
                cuts["rows cut", f" after {MAX_CELLS:,} filled cells"] = None
                break
            text = cell_text(value)
            if len(text) > MAX_CELL:
                cuts["cells cut", f" at {MAX_CELL:,} characters (the most a cell holds)"] = None
                text = text[:MAX_CELL]
            if text:
                row[column] = text
                size += len(text)
            if size > chars:
                break
        if row:
            if len(out) >= limit:
                cuts[f"cut after {MAX_ROWS:,} rows", " (the limit per workbook)"] = None
                break
            out.append(row)
        if size > chars:
            break  # the budget's own note says so, once the lines are taken from it
    return out, list(cuts)


def records(rows: list[Row]) -> Iterator[str]:
    """`column: value; column: value` per row below the header; rows above the header as they are."""
    top = header_index(rows)
    header = rows[top] if top is not None else {}
    for row in rows[: top or 0]:
        yield "; ".join(row.values())
    for row in rows[(top + 1 if top is not None else 0) :]:
        yield "; ".join(f"{header.get(column) or _letter(column + 1)}: {text}" for column, text in row.items())


def header_index(rows: list[Row]) -> int | None:
    """The header among the top rows: all its filled cells text (not numbers or dates), covering at least half
    the table's width, and a row below it. None when there is none."""
    top = rows[:HEADER_SCAN]
    width = max((len(r) for r in top), default=0)
    for n, row in enumerate(top[: len(rows) - 1]):
        if row and all(_is_label(cell) for cell in row.values()) and len(row) * 2 >= width:
            return n
    return None


def _letter(column: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(column))


def cell_text(value: object) -> str:
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
