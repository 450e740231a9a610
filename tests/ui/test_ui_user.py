"""The app as a user meets it (issue 18), in Debian's Chromium through Playwright, loopback only: typing while an
answer streams, lists fresh on load, a sign of life before the first word, readable sources, conversations that
reopen whole, a layout that fits at 1440 px and at 390 px.

The scripted model pauses before each answer's first word (`think_s`), as a local model does while it reads.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder
from tests.support import parts
from tests.support.browser import SAMPLE_FILES, open_app, wait_until
from tests.support.paths import SAMPLES
from tests.support.ui_app import RunningApp, running_app

THINK_S = 1.5
pytestmark = [pytest.mark.slow, parts.chromium()]

RECORD_CHAT = """() => {
    window.__seen = [];
    const chat = document.querySelector('#chatbot');
    const panel = document.querySelector('#sources-panel');
    new MutationObserver(() => window.__seen.push({chat: chat.innerText, panel: panel.innerText})).observe(
        document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("ui-user")
    settings = Settings(data_dir=tmp / "data", collection=f"t{uuid.uuid4().hex[:12]}", _env_file=None)
    files = [SAMPLES / name for name in SAMPLE_FILES]
    with running_app(settings, embedder, delay_s=0.12, docs=files, think_s=THINK_S) as running:
        yield running


def _ask(page: Any, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


def _answered(page: Any, stopped: bool = False) -> None:
    """Waits for the answer to end (its sources shown, unless it was stopped), then for Ask to come back."""
    if not stopped:
        page.locator("#sources-panel").get_by_text("score").first.wait_for()
    wait_until(
        lambda: page.locator("#ask").inner_text().strip() == "Ask" and page.locator("#ask").is_enabled(),
        what="Ask to come back",
    )


# ---- 1: typed text is never erased; a second question waits, and says so; Stop stops --------------------------


def test_text_typed_while_an_answer_streams_is_kept_and_a_second_question_is_refused_aloud(
    ui: RunningApp, context: Any, outside: list[str]
) -> None:
    page = open_app(context, ui.url)
    _ask(page, "How much is a Family membership per year?")
    page.locator("#stop").wait_for()
    assert page.locator("#ask").is_disabled()
    box = page.locator("#question textarea")
    box.press_sequentially("And for students")
    page.locator("#chatbot").get_by_text("According to").first.wait_for()  # streaming now
    box.press_sequentially("?")
    box.press("Enter")  # a second question while the first is answered
    page.get_by_text("still being written").first.wait_for()
    assert box.input_value().strip() == "And for students?"
    _answered(page)
    assert page.locator("#chatbot .bot").last.inner_text().rstrip().endswith("[1]")
    assert box.input_value().strip() == "And for students?"  # every streamed update left it alone
    assert not page.locator("#stop").is_visible()
    assert outside == []


def test_stop_cancels_the_running_answer(ui: RunningApp, context: Any) -> None:
    page = open_app(context, ui.url)
    _ask(page, "Which tools does the repair workshop lend?")
    chat = page.locator("#chatbot")
    chat.get_by_text("According to").first.wait_for()
    page.locator("#stop").click()
    _answered(page, stopped=True)
    stopped = chat.inner_text()
    time.sleep(1.0)
    assert chat.inner_text() == stopped  # nothing more streams in
    assert not stopped.rstrip().endswith("[1]")


# ---- 3 and 10: a visible step between the search and the first word; "Thinking…" once -----------------------


def test_the_step_between_the_search_and_the_first_word_is_shown(ui: RunningApp, context: Any) -> None:
    page = open_app(context, ui.url)
    page.evaluate(RECORD_CHAT)
    _ask(page, "When does the harbour bakery open?")
    _answered(page)
    seen = page.evaluate("window.__seen")
    waiting = [s for s in seen if "search_knowledge_base" in s["chat"] and "According to" not in s["chat"]]
    assert any("Reading" in s["chat"] for s in waiting), f"nothing said what the agent does after the search: {waiting}"
    assert any("Reading" in s["panel"] for s in waiting)
    assert any("Writing" in s["panel"] for s in seen if "According to" in s["chat"])
    assert all(s["chat"].count("Thinking") <= 1 for s in seen), "Thinking… shown twice"


# ---- 2: every list and total as it is now, on load and on showing the tab ---------------------------------------


def test_a_reload_shows_the_threads_and_sources_added_since_the_server_started(
    ui: RunningApp, context: Any, tmp_path: Path
) -> None:
    question = f"How much is a Family membership per year? ({uuid.uuid4().hex[:6]})"
    ui.parts.agent().ask(question)  # as the CLI or the API would, after the server started
    (tmp_path / "tides.md").write_text("# Tide table\n\nHigh tide at the harbour is at 06:12 on Mondays.\n")
    ui.parts.ingest([tmp_path / "tides.md"])
    page = open_app(context, ui.url)
    page.locator("#threads input").click()
    page.get_by_role("option").filter(has_text=question[-8:]).first.wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Knowledge base").click()
    page.locator("#sources-table").get_by_text("tides.md").filter(visible=True).first.wait_for()
    page.locator("#totals").get_by_text(f"{len(ui.kb.sources())} sources").wait_for()

    (tmp_path / "locks.md").write_text("# Lock hours\n\nThe harbour lock opens at 05:30.\n")
    ui.parts.ingest([tmp_path / "locks.md"])  # while the page is open
    page.get_by_role("tab", name="Chat").click()
    page.get_by_role("tab", name="Knowledge base").click()
    page.locator("#sources-table").get_by_text("locks.md").filter(visible=True).first.wait_for()
    page.locator("#totals").get_by_text(f"{len(ui.kb.sources())} sources").wait_for()


# ---- 4 and 5: sources as their user knows them; tool output without the model's framing -----------------------


def test_sources_show_relative_to_their_folder_with_the_full_path_on_hover_and_no_model_framing(
    ui: RunningApp, context: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "handbook"
    (folder / "rules").mkdir(parents=True)
    moorings = folder / "rules" / "moorings.md"
    moorings.write_text("# Mooring rules\n\nVisiting boats moor at the north pontoon for 12 euros a night.\n")
    ui.parts.ingest([folder])
    absolute = [str(tmp_path.resolve()), str(SAMPLES.resolve())]
    page = open_app(context, ui.url)
    _ask(page, "Where do visiting boats moor for the night?")
    _answered(page)
    panel = page.locator("#sources-panel")
    assert "rules/moorings.md" in panel.inner_text()
    assert panel.locator("code", has_text="rules/moorings.md").first.get_attribute("title") == str(moorings.resolve())
    chat = page.locator("#chatbot")
    chat.get_by_text("search_knowledge_base").first.click()
    chat.get_by_text("Output").first.wait_for()
    shown = chat.inner_text() + panel.inner_text()
    assert "[1]" in shown and "Mooring rules" in shown and "rules/moorings.md" in chat.inner_text()
    for raw in ("retrieved_passages", "not instructions", "<!--", *absolute):
        assert raw not in shown, raw

    page.get_by_role("tab", name="Knowledge base").click()
    table = page.locator("#sources-table")
    table.get_by_text("rules/moorings.md").filter(visible=True).first.wait_for()
    assert not any(a in table.inner_text() for a in absolute)
    page.get_by_role("tab", name="Evaluation").click()
    page.locator("#run-eval").click()
    page.locator("#eval-table").get_by_text("membership.md").filter(visible=True).first.wait_for()
    assert not any(a in page.locator("#eval-table").inner_text() for a in absolute)


# ---- 6: a reopened conversation shows its tool calls and sources ------------------------------------------------


def test_a_reopened_conversation_shows_its_tool_calls_and_sources(ui: RunningApp, context: Any) -> None:
    page = open_app(context, ui.url)
    question = f"What does a Family membership cost? ({uuid.uuid4().hex[:6]})"
    _ask(page, question)
    _answered(page)
    page.locator("#new-chat").click()
    chat, panel = page.locator("#chatbot"), page.locator("#sources-panel")
    wait_until(lambda: "According to" not in chat.inner_text() and "score" not in panel.inner_text(), what="empty")
    page.locator("#threads input").click()
    page.get_by_role("option").filter(has_text=question[-8:]).first.click()
    chat.get_by_text("According to the knowledge base").first.wait_for()
    assert chat.get_by_text("search_knowledge_base").count() == 1
    panel.get_by_text("[1] Membership").first.wait_for()
    assert "score" in panel.inner_text()


# ---- 7, 8, 9, 10: a layout that fits -------------------------------------------------------------------------

CHAT_SCROLLER = """[...document.querySelectorAll('#chatbot *')].find(e =>
    e.scrollHeight > e.clientHeight + 150 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))"""
ICON_OVER_A_MESSAGE = f"""() => {{
    const scroller = {CHAT_SCROLLER};
    scroller.scrollTop = 150;
    const view = scroller.getBoundingClientRect();
    const buttons = [...document.querySelectorAll('#chatbot .top-panel button')].map(b => b.getBoundingClientRect());
    return buttons.length > 0 && [...document.querySelectorAll('#chatbot .message')].some(m => {{
        const r = m.getBoundingClientRect(), top = Math.max(r.top, view.top), bottom = Math.min(r.bottom, view.bottom);
        return buttons.some(b =>
            top < bottom && b.left < r.right && r.left < b.right && b.top < bottom && top < b.bottom);
    }});
}}"""


def test_models_are_a_readable_list_and_the_chat_page_fits_the_window(ui: RunningApp, context: Any) -> None:
    page = open_app(context, ui.url)
    for closed in page.locator("#chat-row .label-wrap:not(.open)").all():
        closed.click()  # every panel open
    assert page.evaluate("document.documentElement.scrollHeight") <= 1000
    page.get_by_role("tab", name="Settings").click()
    items = page.locator("#models-list li")
    items.first.wait_for()
    assert items.count() == 2  # the two models the test app offers
    for item in items.all():
        box = item.bounding_box()
        assert box["width"] >= 400 and box["height"] <= 50, box  # one line (two at most), not a squeezed table
    assert "does not run here: no ANTHROPIC_API_KEY" in page.locator("#models-list").inner_text()


def test_tables_fit_their_columns_and_rows_stay_low(ui: RunningApp, context: Any, tmp_path: Path) -> None:
    wide = tmp_path / ("annual-general-meeting-minutes-and-resolutions-" * 3 + "final.md")  # a long name and title
    wide.write_text("# " + "Minutes of the annual general meeting, with every resolution and vote, " * 3 + "\n\nNo.\n")
    ui.parts.ingest([wide])
    try:
        _tables_fit(ui, context)
    finally:
        ui.parts.kb.remove([str(wide.resolve())])


def _tables_fit(ui: RunningApp, context: Any) -> None:
    page = open_app(context, ui.url)
    page.get_by_role("tab", name="Knowledge base").click()
    table = page.locator("#sources-table")
    table.get_by_text("membership.md").filter(visible=True).first.wait_for()
    table.get_by_text("annual-general").filter(visible=True).first.wait_for()
    right = table.bounding_box()["x"] + table.bounding_box()["width"]
    heads = table.locator("th").all()
    assert len(heads) >= 6 and all(h.bounding_box()["x"] + h.bounding_box()["width"] <= right + 1 for h in heads)
    page.get_by_role("tab", name="Evaluation").click()
    page.locator("#run-eval").click()
    page.locator("#eval-table").get_by_text("membership.md").filter(visible=True).first.wait_for()
    rows = page.locator("#eval-table [role=row]").all()[1:10]  # under the header
    heights = [r.bounding_box()["height"] for r in rows if r.is_visible()]
    assert heights and max(heights) <= 130, heights


def test_on_a_phone_the_question_comes_first_and_every_tab_shows(ui: RunningApp, browser: Any) -> None:
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = open_app(phone, ui.url)
        assert page.locator("#question").bounding_box()["y"] < 844 - 60  # on the first screen, no scrolling
        for name in ("Chat", "Knowledge base", "Evaluation", "Settings"):
            assert page.get_by_role("tab", name=name).is_visible(), name
        page.locator("#chat-side").get_by_role("button", name="Conversations").click()  # the sidebar folds away
        wait_until(lambda: not page.locator("#new-chat").is_visible(), what="the sidebar to fold")
    finally:
        phone.close()


def test_small_things_arrow_icons_and_the_two_ks(ui: RunningApp, context: Any) -> None:
    page = open_app(context, ui.url)
    for n in range(8):  # until the chat scrolls: how many answers that takes depends on the fonts and the window
        _ask(page, f"How much is a Family membership per year, and what else comes with every membership? {n}")
        _answered(page)
        if n >= 2 and page.evaluate(f"() => Boolean({CHAT_SCROLLER})"):
            break
    assert page.evaluate(f"() => Boolean({CHAT_SCROLLER})"), "the chat never grew long enough to scroll"
    box = page.locator("#threads input")
    wait_until(lambda: "Family membership" in box.input_value(), what="the thread's title in the list")
    space = page.evaluate(
        """() => { const i = document.querySelector('#threads input');
        const a = document.querySelector('#threads .icon-wrap'), pad = parseFloat(getComputedStyle(i).paddingRight);
        return a.getBoundingClientRect().left - (i.getBoundingClientRect().right - pad); }"""
    )
    assert space >= 0, "the dropdown arrow covers the conversation's title"
    assert page.locator("#chatbot .top-panel button").count() > 0
    assert not page.evaluate(ICON_OVER_A_MESSAGE), "the chat's icons cover a message"
    page.get_by_role("tab", name="Settings").click()
    assert "Chat" in page.locator("#k").inner_text()
    page.get_by_role("tab", name="Evaluation").click()
    assert "this evaluation only" in page.locator("#eval-k").inner_text()
