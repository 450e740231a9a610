"""The viewer's panel in Debian's Chromium through Playwright: a question answered with a citation, the citation
clicked, and the cited document shown beside the chat at the cited place, for a PDF, a slide deck, a spreadsheet,
a Markdown file and a web page (served from 127.0.0.1 and ingested). The oracle is the cited chunk's own text
from the knowledge base, compared with what the panel's page highlights, read from its DOM: the `<mark>`s of a
document, or PDFium's text under the boxes drawn over a page; and the answer's sentence is marked more strongly
inside it. Then the next and previous citation, the PDF's next page, the phone layout (390 px), and close; every
request stays on this machine and no page breaks the Content-Security-Policy (`conftest.context`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder
from tests.support import parts
from tests.support.browser import CHROMIUM, RECORD_VIOLATIONS, is_local, open_app
from tests.support.files import write_pptx, write_xlsx
from tests.support.paths import SAMPLES
from tests.support.ui_app import RunningApp, running_app
from tests.support.web_site import serve_pages
from viewer.locate import passage_body

pytestmark = [pytest.mark.slow, parts.requires("Chromium", Path(CHROMIUM).exists())]

FERRY_PAGE = """<html><head><title>Lighthouse ferry notice</title></head><body><main>
<h1>Lighthouse ferry notice</h1>
<p>The lighthouse ferry to Gullholm departs from the quay at 09:15 on Sundays, weather permitting.</p>
<p>Kayaks may be carried on the lighthouse ferry for a surcharge of 6 euros.</p>
</main></body></html>"""
PDF_QUESTION = "Who is the Donations Coordinator that owns the donation policy?"
SLIDES = [
    {"title": "Volunteer evening", "bullets": ["Welcome to the volunteer evening"]},
    {
        "title": "Saddle fitting clinic",
        "bullets": ["The saddle fitting clinic runs on Thursdays at 17:30", "Bring your own saddle and sit bones"],
    },
]
SHEET = [
    ["Wheel part", "Price", "Supplier"],
    ["Spoke nipple brass", "0.40", "Velotech"],
    ["Tubeless valve stem", "7.90", "Ridgeway"],
    ["Rim tape 25 mm", "3.20", "Velotech"],
]


@pytest.fixture(scope="module")
def viewer_app(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("viewer-browser")
    files = tmp / "files"
    files.mkdir()
    deck = write_pptx(files / "clinic.pptx", SLIDES, title="Clinic slides")
    sheet = write_xlsx(files / "wheel-parts.xlsx", {"Wheel parts": SHEET})
    docs = [SAMPLES / "policies/donation-policy.pdf", SAMPLES / "policies/membership.md", deck, sheet]
    with serve_pages({"/ferry.html": FERRY_PAGE}) as site:
        allow = site.url.removeprefix("http://")
        settings = Settings(
            data_dir=tmp / "data", collection=f"t{uuid.uuid4().hex[:12]}", allow_hosts=allow, _env_file=None
        )
        with running_app(settings, embedder, docs=docs) as running:
            running.parts.ingest([], [f"{site.url}/ferry.html"])
            yield running


def _letters(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _same(shown: str, passage: str) -> bool:
    """Whether the highlighted text is the passage: the same letters and digits, allowing what rendering drops
    (Markdown's syntax, a link's address)."""
    a, b = _letters(shown), _letters(passage)
    return bool(a) and SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.9


def _ask(page: Any, question: str) -> Any:
    """Ask, and return the last answer's citation link once its [1] is a link to the viewer."""
    before = page.locator("#chatbot a[href*='/source/']").count()
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    links = page.locator("#chatbot a[href*='/source/']")
    page.wait_for_function(
        "n => document.querySelectorAll(\"#chatbot a[href*='/source/']\").length > n", arg=before, timeout=60_000
    )
    page.locator("#ask:not([disabled])").wait_for()
    return links.last


def _cited(ui: RunningApp, href: str) -> str:
    """The cited chunk's text (less its context header), as the knowledge base stores it."""
    chunk = parse_qs(urlsplit(href).query)["chunk"][0]
    rows = ui.kb.keywords.rows([chunk])
    assert rows, f"no chunk {chunk}"
    return passage_body(rows[0].text)[1]


def _open(page: Any, link: Any) -> tuple[str, Any]:
    """Click a citation; the panel's frame once its page has loaded."""
    href = link.get_attribute("href")
    link.click()
    page.locator("#kb-viewer:not([hidden])").wait_for()
    frame = page.frame_locator("#kb-viewer-frame")
    frame.locator("main").wait_for()
    return href, frame


def _marked(frame: Any, selector: str) -> str:
    return str(
        frame.locator("body").evaluate(f"b => [...b.querySelectorAll('{selector}')].map(m => m.textContent).join(' ')")
    )


def _assert_backing(page: Any, frame: Any, passage: str, columns: str = "") -> None:
    """The words marked more strongly lie inside the passage and hold the answer's sentence (the scripted model
    answers with a sentence of the passage it cites); `columns`: a sheet's column names, which its grid does
    not repeat in each row."""
    strong = frame.locator("mark.kb-backing").all_inner_texts()
    assert strong and all(_letters(s) in _letters(passage) for s in strong), strong
    answer = page.locator("#chatbot .bot .message-content").last.inner_text()
    sentence = answer.removeprefix("According to the knowledge base:").replace("[1]", "")
    sentence = re.sub(columns, "", sentence) if columns else sentence
    words = set(re.findall(r"[0-9a-z]+", " ".join(strong).lower()))
    assert set(re.findall(r"[0-9a-z]+", sentence.lower())) <= words, (sentence, strong)


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How much is a Family membership per year?", "markdown"),
        ("When does the saddle fitting clinic run?", "slides"),
        ("What does a tubeless valve stem cost from Ridgeway?", "sheet"),
        ("When does the lighthouse ferry to Gullholm depart?", "web"),
    ],
)
def test_a_citation_opens_its_document_with_the_passage_highlighted(
    viewer_app: RunningApp, context: Any, outside: list[str], question: str, kind: str
) -> None:
    page = open_app(context, viewer_app.url)
    href, frame = _open(page, _ask(page, question))
    passage = _cited(viewer_app, href)
    columns = "|".join(f"{name}: " for name in SHEET[0]) if kind == "sheet" else ""
    if columns:  # a sheet's chunk names each cell's column ("Price: 7.90"); the grid shows the cells
        passage = re.sub(columns, "", passage)
    marked = _marked(frame, "mark.kb-passage")
    assert _same(marked, passage), (kind, marked, passage)
    _assert_backing(page, frame, passage, columns)
    top = frame.locator("mark.kb-passage").first.evaluate("m => m.getBoundingClientRect().top")
    assert 0 <= top <= frame.locator("body").evaluate("b => window.innerHeight")  # scrolled to it
    if kind == "web":
        link = frame.locator("a.kb-url")
        assert link.get_attribute("href").endswith("/ferry.html") and link.get_attribute("target") == "_blank"
    if kind == "slides":
        assert "Saddle fitting clinic" in frame.locator("main").inner_text()
        assert "Welcome to the volunteer evening" not in frame.locator("main").inner_text()  # that slide alone
    if kind == "sheet":
        assert frame.locator("main table").count() == 1  # a grid
    assert outside == []


def test_a_pdf_citation_shows_its_page_with_boxes_and_the_pages_around_it(
    viewer_app: RunningApp, context: Any, outside: list[str]
) -> None:
    page = open_app(context, viewer_app.url)
    href, frame = _open(page, _ask(page, PDF_QUESTION))
    passage = _cited(viewer_app, href)
    assert frame.locator(".kb-page img").get_attribute("src").startswith("data:image/png")  # from the app itself
    assert frame.locator(".kb-box.kb-passage").count() >= 1
    assert _same(frame.locator("q.kb-highlighted").text_content(), passage)
    assert frame.locator(".kb-box.kb-backing").count() >= 1
    cited = frame.locator(".kb-page-number").inner_text()
    assert cited == "page 1 of 2" and frame.locator("a.kb-prev-page").count() == 0
    frame.locator("a.kb-next-page").click()
    frame.locator(".kb-page-number", has_text=re.compile(r"page \d+")).wait_for()
    page.wait_for_function(
        "t => document.getElementById('kb-viewer-frame').contentDocument"
        ".querySelector('.kb-page-number')?.textContent !== t",
        arg=cited,
    )
    assert frame.locator(".kb-box").count() == 0  # the passage is not on the next page, which says where it is
    assert "The cited passage is on page 1" in frame.locator("main").inner_text()
    assert frame.locator(".kb-note").count() == 0  # no "not found" note for a page the citation is not on
    frame.locator("a.kb-prev-page").click()
    page.wait_for_function(
        "t => document.getElementById('kb-viewer-frame').contentDocument"
        ".querySelector('.kb-page-number')?.textContent === t",
        arg=cited,
    )
    assert frame.locator(".kb-box.kb-passage").count() >= 1
    assert outside == []


def test_sources_panel_passages_open_and_step_through_the_citations(
    viewer_app: RunningApp, context: Any, outside: list[str]
) -> None:
    page = open_app(context, viewer_app.url)
    _ask(page, "How much is a Family membership per year?")
    links = page.locator("#sources-panel a[href*='/source/']")
    assert links.count() >= 2  # the cited passage and those retrieved beside it
    first, frame = _open(page, links.first)
    count = page.locator("#kb-viewer [data-kb-count]")
    assert count.inner_text() == f"1 / {links.count()}"
    assert page.locator("#kb-viewer [data-kb=previous]").is_disabled()
    page.locator("#kb-viewer [data-kb=next]").click()
    assert count.inner_text() == f"2 / {links.count()}"
    second = links.nth(1).get_attribute("href")
    page.wait_for_function("h => document.getElementById('kb-viewer-frame').getAttribute('src') === h", arg=second)
    frame.locator("main").wait_for()
    assert _same(_marked(frame, "mark.kb-passage, q.kb-highlighted"), _cited(viewer_app, second))
    page.locator("#kb-viewer [data-kb=previous]").click()
    assert page.locator("#kb-viewer-frame").get_attribute("src") == first
    page.locator("#kb-viewer [data-kb=close]").click()
    page.locator("#kb-viewer").wait_for(state="hidden")
    assert outside == []


def test_the_panel_fills_a_phone_screen(viewer_app: RunningApp, browser: Any, outside: list[str]) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.add_init_script(RECORD_VIOLATIONS)
    context.route("**/*", lambda r: r.continue_() if is_local(urlsplit(r.request.url).hostname) else (
        outside.append(r.request.url), r.abort()))  # fmt: skip
    try:
        page = open_app(context, viewer_app.url)
        _, frame = _open(page, _ask(page, PDF_QUESTION))
        box = page.locator("#kb-viewer").bounding_box()
        assert box is not None and box["x"] == 0 and box["width"] == 390
        image = frame.locator(".kb-page img").bounding_box()
        assert image is not None and 0 < image["width"] <= 390  # the page scales to the screen
        assert frame.locator(".kb-box.kb-passage").first.is_visible()
        page.keyboard.press("Escape")
        page.locator("#kb-viewer").wait_for(state="hidden")
        violations = page.evaluate("window.__csp || []")
        assert violations == [] and outside == []
    finally:
        context.close()
