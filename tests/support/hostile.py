"""Hostile and broken files of every type kbagent reads, for the tests and bench/robustness.py.

Two kinds: `bombs()`, small files made to cost a reader far more than their size (each one a case a review
reproduced: nested PDF forms, shared-string and column-XFD spreadsheets, JSON paths, e-mail attachments, ...),
and `mutants()`, mutations of the valid files the other helpers here make (tests/support/files.py,
tests/support/scans.py):
truncations, flipped bytes, wrong lengths and offsets, huge declared sizes, deep nesting, wrong encodings. The
mutations are drawn by Hypothesis (its own choices of where and what to change, reproducible by seed).
"""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

SEED_TYPES = (
    "md", "txt", "rst", "html", "csv", "tsv", "json", "jsonl", "eml", "mbox",
    "docx", "pptx", "xlsx", "xls", "epub", "pdf", "png", "jpg", "tif",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------- raw PDFs


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF of these object bodies (object n is objects[n - 1]), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def nested_forms_pdf(depth: int = 12, fanout: int = 8) -> bytes:
    """One text-less page drawing a form that draws the next form `fanout` times, `depth` levels down: about
    2 KB that asks a renderer (or a text extractor) to draw fanout**depth shapes. The review's 2,151-byte file
    of this kind grew a page render to 16 GB in 80 s."""
    first_form = 5
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> >> "
        b"/Contents 4 0 R >>" % first_form,
        _stream(b"", b"/X Do"),
    ]
    draws = b" ".join([b"/X Do"] * fanout)
    for level in range(depth):
        inner = first_form + level + 1
        resources = b"/Resources << /XObject << /X %d 0 R >> >>" % inner if level < depth - 1 else b""
        body = draws if level < depth - 1 else b"0 0 m 612 792 l S"
        objects.append(_stream(b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] " + resources, body))
    return raw_pdf(objects)


def many_pages_pdf(pages: int) -> bytes:
    """`pages` text-less pages sharing one content stream: a few bytes a page (the review's 7.6 MB file held
    100,000, about 110 hours of OCR)."""
    kids = b" ".join(b"%d 0 R" % (4 + n) for n in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        _stream(b"", b"0 0 m 100 100 l S"),
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 3 0 R >>"] * pages
    return raw_pdf(objects)


# ---------------------------------------------------------------------------------------- spreadsheets


def _xlsx(sheet_xml: bytes, shared: list[str] | None = None, empty_styles: bool = False) -> bytes:
    """A minimal .xlsx of one sheet (its <sheetData> rows given) and a shared-string table; `empty_styles`: a
    stylesheet with no styles, as some programs write it (openpyxl warns about it)."""
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
        'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.'
        'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml"/></Relationships>',
    }
    strings = "".join(f"<si><t>{text}</t></si>" for text in shared or [])
    parts["xl/sharedStrings.xml"] = (
        f'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">{strings}</sst>'
    )
    if empty_styles:
        parts["xl/styles.xml"] = '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as book:
        for name, text in parts.items():
            book.writestr(name, text)
        book.writestr(
            "xl/worksheets/sheet1.xml",
            b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b"<sheetData>" + sheet_xml + b"</sheetData></worksheet>",
        )
    return buffer.getvalue()


def shared_string_xlsx(cells: int = 30_000, length: int = 32_000) -> bytes:
    """Every cell points at one long shared string: tens of KB that read as `cells * length` characters (the
    review's 25 KB file: a billion characters, 2.9 GB)."""
    per_row = 100
    rows = b"".join(
        b'<row r="%d">' % (r + 1)
        + b"".join(b'<c r="%s%d" t="s"><v>0</v></c>' % (_column(c).encode(), r + 1) for c in range(per_row))
        + b"</row>"
        for r in range(cells // per_row)
    )
    return _xlsx(rows, ["harbour " * (length // 8)])


def column_xfd_xlsx(rows: int = 20_000) -> bytes:
    """One cell in column XFD (the last of 16,384) per row: a reader that pads rows holds 16,384 cells each
    (the review's 17 KB file: 329 MB)."""
    return _xlsx(b"".join(b'<row r="%d"><c r="XFD%d"><v>%d</v></c></row>' % (r, r, r) for r in range(1, rows + 1)))


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


# ----------------------------------------------------------------------------------------------- others


def json_paths(depth: int = 39, key: int = 2_000, leaves: int = 2_000) -> bytes:
    """Long keys nested deep, with many leaves at the bottom: a leaf line that repeats its full path makes
    the text grow with the square of the file (the review's 229 KB file: 1.3 GB before it was refused)."""
    value: object = {f"leaf{n}": n for n in range(leaves)}
    for level in range(depth):
        value = {f"{level:02d}" + "k" * key: value}
    return json.dumps(value).encode()


def mail_with_attachments(attachments: int = 3, size: int = 500_000) -> bytes:
    """A message whose attachments each hold `size` characters of text: each had its own allowance, so the
    file as a whole got `attachments` times the limit (the review's 1.6 MB message: 450 M characters)."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "Logs"
    message.set_content("Three logs attached.")
    for n in range(attachments):
        body = ("tide gauge reading " * (size // 19 + 1))[:size]
        message.add_attachment(body.encode(), maintype="text", subtype="plain", filename=f"log{n}.txt")
    return bytes(message)


def deep_json(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_html(depth: int = 100_000) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"


def tiff_frames(frames: int = 3000, side: int = 16) -> bytes:
    """A multi-page TIFF of `frames` small blank pages."""
    from PIL import Image

    pages = [Image.new("L", (side, side), 255) for _ in range(frames)]
    buffer = io.BytesIO()
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def png_huge_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG signature and header declaring a 10-gigapixel image, then a few bytes of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def zip_lying_sizes(raw: bytes, factor: int = 1 << 20) -> bytes:
    """A zip-based file whose central directory declares every member `factor` times larger than it is."""
    out = bytearray(raw)
    start = 0
    while (at := out.find(b"PK\x01\x02", start)) >= 0:
        size = struct.unpack_from("<I", out, at + 24)[0]
        struct.pack_into("<I", out, at + 24, min(size * factor + 1, 0xFFFFFFFE))
        start = at + 4
    return bytes(out)


def bombs() -> dict[str, bytes]:
    """name with its suffix → bytes: each a file that costs far more to read than its size."""
    return {
        "nested-forms.pdf": nested_forms_pdf(),
        "many-pages.pdf": many_pages_pdf(20_000),
        "shared-string.xlsx": shared_string_xlsx(),
        "column-xfd.xlsx": column_xfd_xlsx(),
        "json-paths.json": json_paths(),
        "attachments.eml": mail_with_attachments(3, 3_000_000),
        "deep.json": deep_json(),
        "deep.jsonl": deep_json(50_000) + b"\n",
        "deep.html": deep_html(),
        "frames.tif": tiff_frames(),
        "huge-header.png": png_huge_header(),
        "wide.csv": (",".join("h" * 1000 for _ in range(1000)) + "\n" + "a," * 999 + "a\n").encode() * 20,
        "utf16-no-bom.txt": "tide table ".encode("utf-16-le") * 1000,
        "mixed-encodings.md": b"# Tide\n" + "Gezeiten für Kiel\n".encode("latin-1") + b"\xff\xfe\x00" * 10,
    }


# ------------------------------------------------------------------------------------------- seed files


def seeds(folder: Path) -> dict[str, bytes]:
    """One valid file of each type in SEED_TYPES (suffix → bytes), made by the other test helpers."""
    from tests.support.files import write_docx, write_epub, write_pdf, write_pptx, write_xls, write_xlsx
    from tests.support.scans import scanned_page

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, bytes] = {}
    text = "Tide tables for the harbour.\n\nHigh water at 06:12, low water at 12:30."
    made["md"] = f"# Tides\n\n{text}\n\n## Notes\n\n- Pilot on duty\n".encode()
    made["txt"] = text.encode()
    made["rst"] = f"Tides\n=====\n\n{text}\n".encode()
    made["html"] = f"<html><head><title>Tides</title></head><body><h1>Tides</h1><p>{text}</p></body></html>".encode()
    made["csv"] = b"station,high,low\nKiel,06:12,12:30\nBergen,07:01,13:15\n"
    made["tsv"] = made["csv"].replace(b",", b"\t")
    made["json"] = json.dumps({"station": {"name": "Kiel", "tides": [{"high": "06:12"}, {"low": "12:30"}]}}).encode()
    made["jsonl"] = b'{"id": 1, "name": "Kiel"}\n{"id": 2, "name": "Bergen"}\n'
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "Tides"
    message.set_content(text)
    message.add_attachment(made["csv"], maintype="text", subtype="csv", filename="tides.csv")
    made["eml"] = bytes(message)
    made["mbox"] = b"From a@example.org Mon Mar  2 08:00:00 2026\n" + made["eml"] + b"\n"
    writers: dict[str, Callable[[Path], object]] = {
        "docx": lambda p: write_docx(p, "Tides", {"High water": text}, table=[["a", "b"], ["1", "2"]]),
        "pptx": lambda p: write_pptx(p, [{"title": "Tides", "bullets": [text], "notes": "pilot"}]),
        "xlsx": lambda p: write_xlsx(p, {"Tides": [["station", "high"], ["Kiel", "06:12"], ["Bergen", 7.5]]}),
        "xls": lambda p: write_xls(p, {"Tides": [["station", "high"], ["Kiel", "06:12"], ["Bergen", 7.5]]}),
        "epub": lambda p: write_epub(p, "Tides", [("High water", text), ("Low water", text)]),
        "pdf": lambda p: write_pdf(p, ["Tides\nHigh water at 06:12", "Low water at 12:30"], title="Tides"),
    }
    for kind, write in writers.items():
        write(folder / f"seed.{kind}")
        made[kind] = (folder / f"seed.{kind}").read_bytes()
    page = scanned_page("HIGH WATER 0612", width=400, height=200, size=28)
    for kind, form in (("png", "PNG"), ("jpg", "JPEG"), ("tif", "TIFF")):
        buffer = io.BytesIO()
        page.save(buffer, form)
        made[kind] = buffer.getvalue()
    return made


# ---------------------------------------------------------------------------------------------- mutants


def mutations(seed: bytes):  # type: ignore[no-untyped-def]
    """A Hypothesis strategy of mutated copies of `seed`: one to four edits, each a truncation, a flipped or
    overwritten byte, a run of bytes cut out, duplicated or inserted, a length or offset field set to an
    extreme (a 2- or 4-byte integer anywhere), or an encoding swapped."""
    from hypothesis import strategies as st

    size = max(len(seed), 1)
    position = st.integers(0, 2**16 - 1).map(lambda k: k * size // 2**16)  # anywhere, not mostly near the start
    edit = st.one_of(
        st.tuples(st.just("truncate"), position.filter(bool), st.just(0)),
        st.tuples(st.just("flip"), position, st.integers(1, 255)),
        st.tuples(st.just("cut"), position, st.integers(1, 4096)),
        st.tuples(st.just("repeat"), position, st.integers(1, 4096)),
        st.tuples(st.just("insert"), position, st.integers(0, 2**32 - 1)),
        st.tuples(st.just("int16"), position, st.sampled_from([0, 1, 0x7FFF, 0xFFFF])),
        st.tuples(st.just("int32"), position, st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000000])),
        st.tuples(st.just("utf16"), st.just(0), st.just(0)),
    )
    return st.lists(edit, min_size=1, max_size=4).map(lambda edits: mutate(seed, edits))


def mutate(seed: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    """`seed` with `edits` (as `mutations` draws them) applied in turn."""
    data = bytearray(seed)
    for op, at, value in edits:
        at = min(at, max(len(data) - 1, 0))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and data:
            data[at] ^= value
        elif op == "cut":
            del data[at : at + value]
        elif op == "repeat":
            data[at:at] = data[at : at + value] * 8
        elif op == "insert":
            data[at:at] = random.Random(value).randbytes(value % 512 + 1)
        elif op in ("int16", "int32") and len(data) >= at + 4:
            struct.pack_into("<H" if op == "int16" else "<I", data, at, value)
        elif op == "utf16":
            data = bytearray(bytes(data).decode("latin-1").encode("utf-16-le"))
    return bytes(data)


def mutants(seed_bytes: dict[str, bytes], count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """`count` mutated files spread over the types of `seed_bytes`, as (suffix, bytes); the same for the same
    `seed`. Hypothesis draws each file's edits."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    kinds = sorted(seed_bytes)
    drawn: list[tuple[str, bytes]] = []
    per_kind = max(1, count // len(kinds))
    for n, kind in enumerate(kinds):
        strategy = mutations(seed_bytes[kind])

        @hypothesis_seed(seed * 1000 + n)
        @settings(
            max_examples=per_kind,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(st.data())
        def draw(data: st.DataObject) -> None:
            drawn.append((kind, data.draw(strategy)))  # noqa: B023  (run at once, in this iteration)

        draw()
    rng = random.Random(seed)
    rng.shuffle(drawn)
    yield from drawn[:count]


def write_all(folder: Path, mutant_count: int, seed: int = 0) -> list[Path]:
    """The bombs and `mutant_count` mutants written into `folder`, one file each; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in bombs().items():
        (folder / f"bomb-{name}").write_bytes(data)
        paths.append(folder / f"bomb-{name}")
    base = seeds(folder / ".seeds")
    for n, (kind, data) in enumerate(mutants(base, mutant_count, seed)):
        path = folder / f"mutant-{n:05d}.{kind}"
        path.write_bytes(data)
        paths.append(path)
    return paths
