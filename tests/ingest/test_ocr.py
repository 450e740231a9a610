"""Scanned pages and images: read by OCR with their page numbers, searchable and cited; OCR off, failed or
refused pages are one line each and never stop the rest of a folder.

The pages are drawn from known text by tests/support/scans.py, so what OCR should find is known."""

from __future__ import annotations

import io
import json
import re
import struct
import time
import zlib
from pathlib import Path

import pytest

from ingest import IngestConfig, Ingestor, Outcome, Progress, build_ingestor
from ingest.loaders import LoadError, load
from ingest.text import ExtractError
from ingest.text.ocr import OcrReader, PageOcr, pdf_page_image
from knowledge_base import KnowledgeBase
from tests.support import parts
from tests.support.files import write_pdf
from tests.support.scans import scanned_page, write_scanned_pdf

FACT = "The Zephyr-9 pump moves 42 litres per minute and its warranty lasts seven years."
OTHER = "The harbour office opens at half past seven and the ferry to Lindholm leaves at noon."

tesseract = parts.ocr_engine("tesseract")
rapidocr = parts.ocr_engine("rapidocr")


def _reader(engine: str, **limits: float) -> OcrReader:
    return OcrReader(engine, **limits)  # type: ignore[arg-type]


def _words(text: str) -> str:
    return " ".join(text.split())


def _ingestor(kb: KnowledgeBase, **ocr: object) -> Ingestor:
    return build_ingestor(IngestConfig(**ocr), kb)


ENGINES = [pytest.param("tesseract", marks=tesseract), pytest.param("rapidocr", marks=rapidocr)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tiff"])
def test_image_files_are_read_by_ocr(tmp_path: Path, engine: str, suffix: str) -> None:
    path = tmp_path / f"note{suffix}"
    scanned_page(FACT, rotate=0.7, noise=0.01).save(path)
    ocr = PageOcr(_reader(engine))
    [doc] = load(path, path.read_bytes(), ocr)
    assert "42 litres per minute" in _words(doc.page_content)
    assert doc.metadata["title"] == "note" and "page" not in doc.metadata  # one image: no page to cite
    assert ocr.pages == 1 and ocr.seconds > 0 and not ocr.notes


@tesseract
def test_multipage_tiff_keeps_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    first, second = scanned_page(OTHER), scanned_page(FACT)
    first.save(path, save_all=True, append_images=[second])
    docs = load(path, path.read_bytes(), PageOcr(_reader("tesseract")))
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "42 litres" in _words(docs[1].page_content) and "ferry" in docs[0].page_content


@tesseract
def test_pdf_text_pages_kept_and_scanned_pages_ocrd_in_order(tmp_path: Path) -> None:
    """Scanned, text, scanned: the text layer is used where there is one, OCR elsewhere, pages in order."""
    from pypdf import PdfReader, PdfWriter

    text_pdf = write_pdf(tmp_path / "text.pdf", ["Harbour timetable, page two"])
    writer = PdfWriter()
    for part in (
        write_scanned_pdf(tmp_path / "first.pdf", [scanned_page(OTHER)]),
        text_pdf,
        write_scanned_pdf(tmp_path / "third.pdf", [scanned_page(FACT)]),
    ):
        writer.append(PdfReader(part))
    mixed = io.BytesIO()
    writer.write(mixed)
    ocr = PageOcr(_reader("tesseract"))
    docs = load(tmp_path / "mixed.pdf", mixed.getvalue(), ocr)
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert "ferry to Lindholm" in _words(docs[0].page_content)
    assert docs[1].page_content == "Harbour timetable, page two"
    assert "42 litres per minute" in _words(docs[2].page_content)
    assert ocr.pages == 2  # only the pages without a text layer


@tesseract
def test_scanned_pdf_is_searchable_and_cites_its_page(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    write_scanned_pdf(folder / "manual.pdf", [scanned_page(OTHER), scanned_page(FACT)])
    (folder / "notes.md").write_text("# Notes\n\nThe garden tomatoes need two litres of water a day.\n")
    report = _ingestor(embedded_kb).run([folder])
    assert report.counts["added"] == 2 and report.counts["failed"] == 0
    assert report.ocr_pages == 2 and report.ocr_seconds > 0  # what the summary line says
    [pdf] = [o for o in report.outcomes if o.source.endswith("manual.pdf")]
    assert pdf.ocr_pages == 2 and not pdf.notes
    top = embedded_kb.search("how many litres per minute does the Zephyr pump move", k=1)[0]
    assert Path(top.metadata["source"]).name == "manual.pdf" and top.metadata["page"] == 2
    assert "42 litres" in _words(top.page_content)


def _mixed_pdf(path: Path, scanned_text: str) -> Path:
    """Page 1 with a text layer, page 2 a scanned image of `scanned_text`."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    text_pdf = write_pdf(path.with_suffix(".text-part"), ["Harbour timetable, page one"])
    scan_pdf = write_scanned_pdf(path.with_suffix(".scan-part"), [scanned_page(scanned_text)])
    for part in (text_pdf, scan_pdf):
        writer.append(PdfReader(part))
    with open(path, "wb") as out:
        writer.write(out)
    return path


def test_ocr_off_skips_pages_with_a_line(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    scanned_page(FACT).save(folder / "photo.png")
    write_scanned_pdf(folder / "scan.pdf", [scanned_page(FACT)])
    _mixed_pdf(tmp_path / "mixed.pdf", FACT).rename(folder / "mixed.pdf")
    report = _ingestor(embedded_kb, ocr="off").run([folder])
    by_name = {Path(o.source).name: o for o in report.outcomes}
    assert by_name["photo.png"].status == "skipped"
    assert by_name["photo.png"].message == "image skipped: OCR is off (KBAGENT_OCR=off)"
    assert by_name["scan.pdf"].status == "skipped" and "page 1 skipped: OCR is off" in by_name["scan.pdf"].message
    assert by_name["mixed.pdf"].status == "added"
    assert by_name["mixed.pdf"].notes == ["page 2 skipped: OCR is off (KBAGENT_OCR=off)"]
    assert report.ocr_pages == 0


@tesseract
def test_pages_skipped_with_ocr_off_are_read_once_it_is_on(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    _mixed_pdf(tmp_path / "mixed.pdf", FACT).rename(folder / "mixed.pdf")
    first = _ingestor(embedded_kb, ocr="off").run([folder])
    assert first.counts["added"] == 1 and first.ocr_pages == 0
    second = _ingestor(embedded_kb, ocr="tesseract").run([folder])
    assert second.counts["updated"] == 1 and second.ocr_pages == 1 and not second.outcomes[0].notes
    top = embedded_kb.search("Zephyr pump litres per minute", k=1)[0]
    assert top.metadata["page"] == 2 and "42 litres" in _words(top.page_content)
    third = _ingestor(embedded_kb, ocr="tesseract").run([folder])
    assert third.counts["unchanged"] == 1 and third.ocr_pages == 0  # read in full: not OCR'd again


class _Recorded(Progress):
    def __init__(self) -> None:
        self.ocr: list[str] = []

    def ocr_planned(self, pages: int) -> None:
        self.ocr.append(f"planned {pages}")

    def ocr_page_done(self, seconds: float) -> None:
        self.ocr.append("page")


@tesseract
def test_ocr_runs_beside_the_other_files_with_its_own_progress(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """A scanned PDF first in the folder's order does not hold up the text files behind it."""
    folder = tmp_path / "kb"
    folder.mkdir()
    write_scanned_pdf(folder / "a-scan.pdf", [scanned_page(OTHER), scanned_page(FACT)])
    for name in ("b.md", "c.md", "d.txt"):
        (folder / name).write_text(f"# {name}\n\nA short note called {name}.\n")
    progress = _Recorded()
    report = _ingestor(embedded_kb, write_batch_chunks=1).run([folder], progress=progress)
    assert [Path(o.source).name for o in report.outcomes] == ["b.md", "c.md", "d.txt", "a-scan.pdf"]
    assert progress.ocr == ["planned 2", "page", "page"]


class _Stop(Exception):
    pass


@tesseract
def test_a_stopped_ingest_stops_ocr_between_pages(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """An ingest that ends early (an error, Ctrl-C) leaves no OCR running on through the rest of a long scan."""
    import threading

    folder = tmp_path / "kb"
    folder.mkdir()
    write_scanned_pdf(folder / "a-scan.pdf", [scanned_page(f"{FACT} Copy {n}.") for n in range(6)])
    (folder / "b.md").write_text("")  # failed at once: its outcome reaches the progress while OCR runs

    class Failing(_Recorded):
        def file_done(self, outcome: Outcome) -> None:
            deadline = time.monotonic() + 60
            while not self.ocr and time.monotonic() < deadline:  # fail once the OCR has begun, not before it
                time.sleep(0.01)
            raise _Stop

    progress = Failing()
    with pytest.raises(_Stop):
        _ingestor(embedded_kb).run([folder], progress=progress)
    assert progress.ocr[0] == "planned 6" and progress.ocr.count("page") < 6
    assert not [t for t in threading.enumerate() if t.name.startswith("kbagent-ingest")]


def _png_bomb(width: int, height: int) -> bytes:
    """A real PNG of width × height white grey pixels: a few hundred KB that decode to width × height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * width
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@tesseract
def test_hostile_images_are_one_line_each_and_the_folder_goes_on(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(_png_bomb(20_000, 20_000))
    good = io.BytesIO()
    scanned_page(FACT).save(good, "PNG")
    (folder / "good.png").write_bytes(good.getvalue())
    (folder / "cut.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    (folder / "noise.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    scan = write_scanned_pdf(tmp_path / "scan.pdf", [scanned_page(FACT)]).read_bytes()
    (folder / "unrenderable.pdf").write_bytes(scan.replace(b"%PDF-", b"%XYZ-", 1))  # pypdf reads it, PDFium won't
    report = _ingestor(embedded_kb).run([folder])
    by_name = {Path(o.source).name: o for o in report.outcomes}
    assert by_name["good.png"].status == "added"
    assert by_name["bomb.png"].status == "failed"
    assert by_name["bomb.png"].message == "image too large to OCR (over 179 M pixels: a decompression bomb)"
    assert by_name["cut.png"].status == "failed" and by_name["cut.png"].message.startswith("image: corrupt image (")
    assert by_name["noise.jpg"].status == "failed" and by_name["noise.jpg"].message.startswith("not a readable image")
    assert by_name["unrenderable.pdf"].status == "failed"
    assert by_name["unrenderable.pdf"].message.startswith("page 1: could not render it (PdfiumError")
    for outcome in report.outcomes:
        assert "\n" not in outcome.message and len(outcome.message) < 300


def test_image_over_the_pixel_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    scanned_page(FACT, width=1200, height=1000).save(path)
    ocr = PageOcr(OcrReader(max_pixels=1_000_000))
    with pytest.raises(LoadError, match=r"^image too large to OCR \(1200 × 1000 pixels > 1 M; raise KBAGENT_OCR_MAX_"):
        load(path, path.read_bytes(), ocr)
    assert ocr.pages == 0 and ocr.seconds == 0


@tesseract
def test_tiff_frame_over_the_pixel_limit_is_one_note(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    small, big = scanned_page(FACT, width=1000, height=900), scanned_page(OTHER, width=1200, height=1000)
    small.save(path, save_all=True, append_images=[big])
    ocr = PageOcr(_reader("tesseract", max_pixels=1_000_000))
    [doc] = load(path, path.read_bytes(), ocr)
    assert doc.metadata["page"] == 1 and "42 litres" in _words(doc.page_content)
    assert ocr.notes == [
        "page 2: image too large to OCR (1200 × 1000 pixels > 1 M; raise KBAGENT_OCR_MAX_MEGAPIXELS to read it)"
    ]


def test_large_pdf_page_is_rendered_within_the_pixel_limit(tmp_path: Path) -> None:
    """A page declared 5 m wide renders scaled down, not as a multi-gigapixel bitmap."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "poster.pdf"
    poster = canvas.Canvas(str(path), pagesize=(14_000, 14_000))
    poster.showPage()
    poster.save()
    image = pdf_page_image(path.read_bytes(), 1, max_pixels=4_000_000)
    assert max(image.size) <= 4000 and image.size[0] * image.size[1] <= 4_000_000


def test_unrenderable_page_number_is_one_line() -> None:
    with pytest.raises(ExtractError, match="could not render it"):
        pdf_page_image(b"%PDF-1.4 not a pdf", 1, max_pixels=1_000_000)


@tesseract
def test_ocr_time_per_page_is_bounded(tmp_path: Path) -> None:
    ocr = PageOcr(_reader("tesseract", page_timeout_s=0.05))
    text = ocr.read("page 3", lambda: scanned_page(FACT * 8))
    assert text == "" and ocr.notes == ["page 3: OCR took longer than 0.05 s"]
    assert ocr.seconds < 5


def test_missing_engine_is_a_line_saying_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract program on it
    path = tmp_path / "note.png"
    scanned_page(FACT).save(path)
    ocr = PageOcr(_reader("tesseract"))
    assert load(path, path.read_bytes(), ocr) == []
    why = "no OCR engine: the tesseract program is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)"
    assert ocr.notes == [f"image: {why}"]
    scan = write_scanned_pdf(tmp_path / "scan.pdf", [scanned_page(FACT)] * 3)
    ocr = PageOcr(_reader("tesseract"))
    assert load(scan, scan.read_bytes(), ocr) == []
    assert ocr.notes == [f"pages 1, 2, 3: {why}"]  # one line for a reason many pages share


@pytest.mark.slow
@tesseract
def test_cli_summary_counts_ocr_pages_and_notes_unread_ones(tmp_path: Path) -> None:
    from tests.support.cli import kbagent

    folder = tmp_path / "kb"
    folder.mkdir()
    write_scanned_pdf(folder / "scan.pdf", [scanned_page(OTHER), scanned_page(FACT)])
    _mixed_pdf(tmp_path / "mixed.pdf", FACT).rename(folder / "mixed.pdf")
    data = tmp_path / "data"
    off = kbagent("ingest", str(folder), data=data, env={"KBAGENT_OCR": "off"})
    assert off.returncode == 0, off.stderr
    lines = [" ".join(line.split()) for line in off.stdout.splitlines()]
    assert "skipped scan.pdf: pages 1, 2 skipped: OCR is off (KBAGENT_OCR=off)" in lines
    assert "note mixed.pdf: page 2 skipped: OCR is off (KBAGENT_OCR=off)" in lines
    assert "OCR'd" not in off.stdout

    on = kbagent("ingest", str(folder), "--json", data=data, env={"KBAGENT_OCR": "tesseract"})
    summary = json.loads(on.stdout)
    assert summary["added"] == 1 and summary["updated"] == 1 and summary["ocr_pages"] == 3
    assert summary["ocr_seconds"] > 0 and summary["problems"] == []
    again = kbagent("ingest", str(folder), data=data)
    assert "2 unchanged" in again.stdout and "OCR'd" not in again.stdout

    fresh = kbagent("ingest", str(folder), data=tmp_path / "fresh")
    assert re.search(r"2 added, .* chunks/s\); 3 pages OCR'd in \d+\.\ds$", " ".join(fresh.stdout.split()))


@tesseract
@rapidocr
def test_auto_picks_tesseract_and_falls_back_to_rapidocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert OcrReader("auto").engine().name == "tesseract"  # the better of the two by bench/ocr.py
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract program on it
    assert OcrReader("auto").engine().name == "rapidocr"


def test_ocr_has_its_own_progress_line_in_the_terminal_and_the_app() -> None:
    from rich.console import Console

    from kbagent.progress import RichProgress
    from kbagent.services.operations import ReportingProgress

    screen = io.StringIO()
    with RichProgress(Console(file=screen, force_terminal=True, width=100)) as terminal:
        terminal.files_found(3)
        terminal.ocr_planned(2)
        terminal.ocr_page_done(1.5)
    ocr_lines = [line for line in screen.getvalue().splitlines() if "ocr" in line]
    assert ocr_lines and "1/2" in ocr_lines[-1] and "1.5 s/page" in ocr_lines[-1]

    seen: list[str] = []
    app = ReportingProgress(lambda fraction, text: seen.append(text))
    app.files_found(3)
    app.ocr_planned(2)
    app.ocr_page_done(1.5)
    assert seen[-1] == "0/3 sources, 0/0 chunks embedded, 1/2 pages OCR'd"
