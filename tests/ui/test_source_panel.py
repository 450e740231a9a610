"""The viewer's pages as the app serves them (`ui.source_panel`), over HTTP without a browser: only sources the
knowledge base records are shown (an id not recorded, a path, another knowledge base's name, a chunk of another
source: the same 404), the page keeps the app's Content-Security-Policy, and with a login set the page needs it
(the browser's login cookie or the user and password). And the links: an answer's `[n]` becomes a link to its
passage carrying the sentence it ends, and nothing else does. The browser test is test_source_panel_browser.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder
from tests.support.paths import SAMPLES
from tests.support.ui_app import RunningApp, running_app
from tools.knowledge_search import Passage
from ui.safe_markdown import safe_markdown
from ui.server import CONTENT_POLICY
from ui.source_panel import link_citations

DOCS = [SAMPLES / "policies/membership.md", SAMPLES / "guides/fixing-a-flat.md"]
EDITED = "# Bell tower\n\nThe bell tower opens at noon on Fridays and closes at four.\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("viewer-pages")
    settings = Settings(data_dir=tmp / "data", collection=f"t{uuid.uuid4().hex[:12]}", _env_file=None)
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "gone.md").write_text("# Gone\n\nThe boathouse key hangs behind the door.\n", encoding="utf-8")
    (mine / "edited.md").write_text(EDITED, encoding="utf-8")
    with running_app(settings, embedder, docs=[*DOCS, mine / "gone.md", mine / "edited.md"]) as running:
        yield running


def _address(app: RunningApp, name: str) -> tuple[str, str, str]:
    """(source id, one of its chunk ids, its address) of the sample file `name`."""
    record = next(r for r in app.kb.sources() if r.source.endswith(name))
    chunk = record.chunk_ids[0]
    return record.source_id, chunk, f"/source/{quote(app.kb.name, safe='')}/{record.source_id}?chunk={chunk}"


def test_a_recorded_source_is_shown_under_the_content_policy(served: RunningApp) -> None:
    _, _, address = _address(served, "membership.md")
    response = httpx.get(served.url + address, timeout=60)
    assert response.status_code == 200 and 'class="kb-passage"' in response.text
    assert response.headers["content-security-policy"] == CONTENT_POLICY
    assert not re.search(
        r"""(?:src|href)=["']?(?:https?:)?//""", response.text.split("<main>", 1)[1].split("</main>")[0]
    )


def test_only_recorded_sources_of_this_knowledge_base_are_served(served: RunningApp, tmp_path: Path) -> None:
    membership_id, _, good = _address(served, "membership.md")
    _, other_chunk, _ = _address(served, "fixing-a-flat.md")
    kb = quote(served.kb.name, safe="")
    secret = tmp_path / "secret.md"
    secret.write_text("The safe's code is 4711.", encoding="utf-8")
    refused = [
        f"/source/{kb}/0123456789abcdef",  # the shape of an id, not recorded
        f"/source/{kb}/{quote(str(secret), safe='')}",  # a path, encoded
        f"/source/{kb}/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/source/{kb}/{membership_id}?chunk={other_chunk}",  # a chunk of another source
        f"/source/another-kb/{membership_id}",  # a recorded id asked of another knowledge base
        f"/source/{kb}/{membership_id.upper()}",
    ]
    assert httpx.get(served.url + good, timeout=60).status_code == 200
    for address in refused:
        response = httpx.get(served.url + address, timeout=60)
        assert response.status_code == 404, address
        assert "4711" not in response.text and "root:" not in response.text
    for address in (f"/source/{kb}/{quote(str(secret))}", f"/source/{kb}/../../etc/passwd"):  # not even routed here
        response = httpx.get(served.url + address, timeout=60)
        assert response.status_code in (404, 405) and "4711" not in response.text and "root:" not in response.text
    assert httpx.post(served.url + good, timeout=60).status_code in (404, 405)


def test_a_source_deleted_since_the_answer_says_so(served: RunningApp) -> None:
    record = next(r for r in served.kb.sources() if r.source.endswith("gone.md"))
    _, _, address = _address(served, "gone.md")
    Path(record.source).unlink()
    response = httpx.get(served.url + address, timeout=60)
    assert response.status_code == 200 and 'data-status="missing"' in response.text
    assert "moved or deleted" in response.text and "boathouse" not in response.text  # no stale text


def test_an_old_citation_finds_its_passage_from_the_text_saved_with_the_answer(served: RunningApp) -> None:
    """The file was edited and ingested again since the answer: its chunk ids changed, and the address falls back
    to the passage's text saved with the answer, with a note."""
    from kbagent.services.turns import Turn
    from tools.knowledge_search import Passage

    record = next(r for r in served.kb.sources() if r.source.endswith("edited.md"))
    source_id, old_chunk, address = _address(served, "edited.md")
    text = served.kb.keywords.rows([old_chunk])[0].text
    cited = Passage(n=1, chunk_id=old_chunk, title="Bell tower", source=record.source, text=text)
    served.svc.turns.save("t-old", "It opens at noon [1].", Turn([], [cited], [], []))
    Path(record.source).write_text("# Bell tower\n\nVisits are guided.\n\n" + EDITED.split("\n\n", 1)[1], "utf-8")
    served.parts.ingest([Path(record.source)])
    assert old_chunk not in served.kb.source_by_id(source_id).chunk_ids  # the address is an old one now
    response = httpx.get(served.url + address, timeout=60)
    assert response.status_code == 200 and 'data-status="changed"' in response.text
    assert "changed since this answer" in response.text
    marked = " ".join(re.findall(r'<mark class="kb-passage"[^>]*>(.*?)</mark>', response.text, re.DOTALL))
    assert "The bell tower opens at noon on Fridays and closes at four." in " ".join(marked.split())
    unsaved = address.replace(old_chunk, old_chunk[:-1] + ("0" if old_chunk[-1] != "0" else "1"))
    assert httpx.get(served.url + unsaved, timeout=60).status_code == 404  # gone, and saved with no answer


def test_the_page_needs_the_apps_login(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", collection=f"t{uuid.uuid4().hex[:12]}", auth="ada:harbour-2024", _env_file=None
    )
    with running_app(settings, embedder, docs=DOCS[:1]) as app:
        _, _, address = _address(app, "membership.md")
        url = app.url + address
        assert httpx.get(url, timeout=60).status_code == 401
        assert httpx.get(url, auth=("ada", "wrong"), timeout=60).status_code == 401
        assert httpx.get(url, cookies={"access-token-unsecure-x": "forged"}, timeout=60).status_code == 401
        assert httpx.get(url, auth=("ada", "harbour-2024"), timeout=60).status_code == 200
        with httpx.Client(base_url=app.url, timeout=60) as browser:  # the page's own sign-in, then its cookie
            assert browser.get(address).status_code == 401
            signed = browser.post("/login", data={"username": "ada", "password": "harbour-2024"})
            assert signed.status_code == 200 and browser.cookies
            shown = browser.get(address)
            assert shown.status_code == 200 and 'class="kb-passage"' in shown.text


def _passage(n: int, chunk: str) -> Passage:
    return Passage(n=n, chunk_id=chunk, title="t", source="/docs/a.md", text="x")


def test_an_answers_citations_link_to_their_passages_with_their_sentence() -> None:
    cited = [_passage(1, "c1"), _passage(2, "c2")]
    seen: list[tuple[str, str]] = []

    def address(p: Passage, sentence: str) -> str:
        seen.append((p.chunk_id, sentence))
        return f"/source/kb/0123456789abcdef?chunk={p.chunk_id}&sentence={quote(sentence)}"

    answer = "Bikes travel free [1]. Tickets cost 14 euros [2][1]. `code [1]` and [3] stay.\n\n"
    answer += "[see](http://evil.example/) [1]"
    shown = link_citations(safe_markdown(answer), cited, address)
    links = re.findall(r"\[\\\[(\d)\\\]\]\(([^)]*)\)", shown)
    assert [n for n, _ in links] == ["1", "2", "1", "1"]
    assert "`code [1]`" in shown and "[3] stay" in shown and "evil.example/)" not in shown
    assert seen[0] == ("c1", "Bikes travel free") and seen[1] == ("c2", "Tickets cost 14 euros")
    assert parse_qs(urlsplit(links[1][1]).query)["chunk"] == ["c2"]
    assert link_citations("Free [1].", cited, None) == "Free [1]."


def test_a_reopened_conversation_links_its_citations_and_the_sources_panel_its_passages() -> None:
    from kbagent.services.turns import Turn
    from ui.chat_format import history_messages, sources_markdown

    cited = [_passage(1, "c1")]
    retrieved = [_passage(2, "c2")]

    def address(p: Passage, sentence: str) -> str:
        return f"/source/kb/0123456789abcdef?chunk={p.chunk_id}"

    answer = "Bikes travel free [1]."
    messages = history_messages(
        [("user", "Bikes?"), ("assistant", answer)], {answer: Turn([], cited, retrieved, [])}, {}, address
    )
    assert messages[-1].content == "Bikes travel free [\\[1\\]](/source/kb/0123456789abcdef?chunk=c1)."
    panel = sources_markdown(cited, retrieved, {}, (), {"c1": "/source/kb/x?chunk=c1", "c2": "/source/kb/x?chunk=c2"})
    assert "**[\\[1\\] t](/source/kb/x?chunk=c1)**" in panel and "**[t](/source/kb/x?chunk=c2)**" in panel
