"""The viewer's panel beside the chat: a citation `[n]` in an answer, or a passage in the sources panel, links to
its stable address `/source/<knowledge base>/<source id>?chunk=<chunk id>`; a click opens that address in a
panel (an iframe of this app's own page) beside the chat, at the cited place, with the cited passage highlighted
and the words that back the answer's sentence marked more strongly. Without the page's script (a middle click,
a copied link) the same address opens as a page of its own.

`SourcePages` answers an address with a whole HTML page and holds no components, so a test calls it directly;
`SourceRoute` serves it (behind the app's login: `ui.server.PageLoginRequired`). Only sources the knowledge base
records are shown (`viewer.service.SourceViewer` refuses any other id, and ids are checked for their shape
before): a request for anything else, a path among them, gets the same 404. The page keeps the app's
Content-Security-Policy: the drawn page is an inline `data:` image, the document's HTML is the viewer's cleaned
HTML (no script, no remote load), and its links open in a new tab only when clicked.
"""

from __future__ import annotations

import base64
import html
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from kbagent.errors import UserError
from ui.safe_markdown import _pieces
from viewer.address import Address, parse_address, source_address

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from kbagent.services.operations import Services
    from knowledge_base import KnowledgeBase
    from tools.knowledge_search import Passage
    from viewer.service import SourceViewer, View

MAX_SENTENCE_CHARS = 400  # the answer's sentence carried in a citation's link, for marking its backing words
CITATION = re.compile(r"(?<!\\)\[(\d{1,3})\](?!\()")  # [n], not \[n] nor a link's text
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
REFUSED = "No such source in this knowledge base."


# ---- links to the viewer --------------------------------------------------------------------------------------


class Addresses:
    """Each passage's address in this app (cached: an answer's messages are made again at every update). `kb`
    gives the knowledge base, read only once a passage needs an address."""

    def __init__(self, kb: Callable[[], KnowledgeBase]) -> None:
        self._kb = kb
        self._ids: dict[str, str] = {}

    def __call__(self, passage: Passage, sentence: str = "") -> str:
        """The passage's address, or "" for a source with no record (a web search result, say); `sentence`: the
        answer's sentence citing it, whose backing words the viewer marks."""
        source = passage.source
        if not passage.chunk_id:
            return ""
        kb = self._kb()
        if source not in self._ids:
            self._ids.update(kb.records.source_ids([source]))
        source_id = self._ids.get(source, "")
        if not source_id:
            return ""
        address = source_address(kb.id, source_id, passage.chunk_id)
        if sentence:
            address += "&" + urlencode({"sentence": sentence[:MAX_SENTENCE_CHARS]})
        return address

    def of(self, passages: Sequence[Passage]) -> dict[str, str]:
        """chunk id → address, for the sources panel."""
        return {p.chunk_id: address for p in passages if (address := self(p))}


def link_citations(markdown: str, cited: Sequence[Passage], addresses: Callable[[Passage, str], str] | None) -> str:
    """An answer's (already safe) Markdown with each `[n]` of a cited passage made a link to its address, which
    carries the sentence it ends; code is left as written."""
    if addresses is None or not cited:
        return markdown
    by_number = {p.n: p for p in cited}
    out = []
    for code, piece in _pieces(markdown):
        out.append(piece if code else _linked(piece, by_number, addresses))
    return "".join(out)


def _linked(text: str, by_number: Mapping[int, Passage], addresses: Callable[[Passage, str], str]) -> str:
    def replace(match: re.Match[str]) -> str:
        passage = by_number.get(int(match.group(1)))
        if passage is None:
            return match.group(0)
        address = addresses(passage, _sentence_before(text, match.start()))
        if not address:
            return match.group(0)
        return f"[\\[{passage.n}\\]]({address})"

    return CITATION.sub(replace, text)


def _sentence_before(text: str, at: int) -> str:
    """The sentence a citation at `at` ends: back to the last sentence end or line start, markers dropped."""
    start = max(text.rfind("\n", 0, at) + 1, max((m.end() for m in SENTENCE_END.finditer(text, 0, at)), default=0))
    sentence = re.sub(r"\[\d{1,3}\]", "", text[start:at])
    return " ".join(sentence.replace("\\", "").split())


# ---- the page of an address -----------------------------------------------------------------------------------


class SourcePages:
    """Pages of the viewer for one app: the knowledge base's sources at their cited places. The viewer (and its
    worker process) is made at the first request and closed by `close`."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._viewer: SourceViewer | None = None
        self._lock = threading.Lock()

    @property
    def viewer(self) -> SourceViewer:
        with self._lock:
            if self._viewer is None:
                self._viewer = self.svc.parts.viewer(kb=self.svc.kb)
            return self._viewer

    def close(self) -> None:
        with self._lock:
            if self._viewer is not None:
                self._viewer.runner.close()
                self._viewer = None

    def respond(self, path: str, query: str) -> tuple[int, str]:
        """(HTTP status, HTML page) for a request's path and query: 404 for anything not a recorded source of
        this knowledge base (another knowledge base's, an id not recorded, a path, a chunk of another source)."""
        address = parse_address(f"{path}?{query}" if query else path)
        # links name the id (a rename leaves it alone), as /v1 and MCP addresses do; a typed name works too
        if address is None or address.knowledge_base not in (self.svc.kb.id, self.svc.kb.name):
            return 404, refused_page()
        asked = parse_qs(query)
        sentence = (asked.get("sentence") or [""])[0][:MAX_SENTENCE_CHARS]
        page = _number((asked.get("page") or [""])[0])
        cited = _number((asked.get("cited") or [""])[0])
        try:
            backing = self._backing(address, sentence)
            try:
                view = self.viewer.view(address.source_id, address.chunk_id, backing=backing, page=page)
            except UserError:  # the chunk is gone (edited since): the passage's text saved with the answer
                saved = self.svc.turns.passage_text(address.chunk_id) if address.chunk_id else ""
                if not saved:
                    raise
                backing = _backing_in(saved, sentence)
                view = self.viewer.view(address.source_id, address.chunk_id, saved_passage=saved, backing=backing)
        except UserError:
            return 404, refused_page()
        shown_as = self.svc.kb.display_names().get(view.source, view.source)
        return 200, view_page(view, address, sentence, cited, shown_as)

    def _backing(self, address: Address, sentence: str) -> list[tuple[int, int]]:
        """The spans of the cited chunk's text that back the answer's sentence (`agent.support`)."""
        if not sentence or not address.chunk_id:
            return []
        rows = self.svc.kb.keywords.rows([address.chunk_id])
        return _backing_in(rows[0].text, sentence) if rows else []


def _backing_in(text: str, sentence: str) -> list[tuple[int, int]]:
    """The spans of a passage's `text` that back the answer's `sentence` (`agent.support`)."""
    from agent.support import backing_spans

    return backing_spans(sentence, text) if sentence else []


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) < 1_000_000 else None


PAGE_CSS = """
:root { color-scheme: light; font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; padding: 10px 14px 40px; font-size: 15px; line-height: 1.5; color: #1f2937; background: #fff; }
header { border-bottom: 1px solid #e5e7eb; padding-bottom: 6px; margin-bottom: 10px; }
h1.kb-title { font-size: 17px; margin: 0 0 2px; overflow-wrap: anywhere; }
.kb-where { color: #4b5563; font-size: 13px; overflow-wrap: anywhere; }
.kb-note { background: #fef3c7; border: 1px solid #f59e0b; padding: 6px 8px; border-radius: 6px; font-size: 14px; }
nav.kb-pages { display: flex; gap: 10px; align-items: center; margin: 6px 0; font-size: 14px; }
nav.kb-pages a { text-decoration: none; border: 1px solid #d1d5db; border-radius: 6px; padding: 2px 10px; }
.kb-page { position: relative; display: inline-block; max-width: 100%; }
.kb-page img { display: block; max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
.kb-box { position: absolute; pointer-events: none; outline: 2px solid rgba(217, 119, 6, 0.85); }
.kb-box.kb-backing { outline: 2px solid rgba(194, 65, 12, 1); }
.kb-under { font-size: 14px; color: #374151; }
mark.kb-passage { background: #fde68a; padding: 1px 0; }
mark.kb-backing { background: #fb923c; font-weight: 600; }
.kb-doc table { border-collapse: collapse; font-size: 13px; }
.kb-doc td, .kb-doc th { border: 1px solid #e5e7eb; padding: 2px 6px; vertical-align: top; }
.kb-doc pre { white-space: pre-wrap; overflow-wrap: anywhere; }
.kb-doc { overflow-wrap: anywhere; }
.kb-passage-text { border-left: 4px solid #f59e0b; padding-left: 8px; white-space: pre-wrap; }
.kb-article h1 { font-size: 1.35em; } .kb-article h2 { font-size: 1.2em; } .kb-article h3 { font-size: 1.05em; }
details.kb-under summary { cursor: pointer; color: #4b5563; }
.kb-box, mark.kb-passage, .kb-passage-text { scroll-margin-top: 48px; }  /* a line of context above the passage */
"""
# The page scrolls the first highlight into the middle of the panel once it is laid out (the image drawn).
SCROLL_JS = """
window.addEventListener('load', () => {
  const top = e => e.getBoundingClientRect().top;
  const all = [...document.querySelectorAll('.kb-box.kb-passage, mark.kb-passage, .kb-passage-text')];
  const first = all.sort((a, b) => top(a) - top(b))[0];  // a page's text order is not always top to bottom
  if (first) first.scrollIntoView({block: all.length > 1 ? 'start' : 'center'});
});
"""


def view_page(view: View, address: Address, sentence: str = "", cited: int | None = None, shown_as: str = "") -> str:
    """A `View` as a whole HTML page: what and where (`shown_as`: the source as its user knows it), the one-line
    note, then the drawn page with its highlight's boxes (a PDF, an image) or the document's cleaned HTML with
    its marks."""
    where = " · ".join(x for x in (shown_as or view.source, view.location) if x)
    head = [f'<h1 class="kb-title">{html.escape(view.title or view.source)}</h1>']
    head.append(f'<div class="kb-where">{html.escape(where)}</div>')
    if view.url:
        link = html.escape(view.url, quote=True)
        head.append(
            f'<div class="kb-where">The stored text of <a class="kb-url" href="{link}" target="_blank" '
            f'rel="noopener noreferrer nofollow">{html.escape(view.url)}</a> (opens the page itself)</div>'
        )
    image = view.page_image
    elsewhere = image is not None and cited is not None and image.page != cited
    if view.note and not elsewhere:
        head.append(f'<p class="kb-note" role="status">{html.escape(view.note)}</p>')
    body: list[str] = []
    if image is not None:
        head.append(_page_nav(image.page, image.pages, image.previous, image.next, address, sentence, cited))
        body.append(_image_html(view))
        if elsewhere:
            back = _page_link(address, sentence, cited or 1, cited or 1, f"page {cited}")
            body.append(f'<p class="kb-under">The cited passage is on {back}.</p>')
    elif view.text is not None and view.text.html:
        body.append(f'<article class="kb-article">{view.text.html}</article>')
    elif view.passage and view.status not in ("missing", "unreadable"):
        body.append(f'<div class="kb-passage-text">{html.escape(view.passage)}</div>')
    title = html.escape(view.title or view.source or "source")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{PAGE_CSS}</style></head>"
        f'<body data-status="{view.status}"><header>{"".join(head)}</header><main>{"".join(body)}</main>'
        f"<script>{SCROLL_JS}</script></body></html>"
    )


def _image_html(view: View) -> str:
    image = view.page_image
    assert image is not None
    src = "data:image/png;base64," + base64.b64encode(image.png).decode("ascii")
    boxes = [_box(b, image.width, image.height, "kb-passage") for b in image.passage_boxes]
    boxes += [_box(b, image.width, image.height, "kb-backing") for b in image.backing_boxes]
    out = [
        f'<div class="kb-page"><img src="{src}" width="{image.width}" height="{image.height}" '
        f'alt="page {image.page} of {image.pages}">{"".join(boxes)}</div>'
    ]
    if image.found:  # the page's own text under the boxes, for a screen reader and for copying
        text = html.escape(image.highlighted_text)
        summary = "<summary>The highlighted text</summary>"
        out.append(f'<details class="kb-under">{summary}<q class="kb-highlighted">{text}</q></details>')
    elif view.passage:
        out.append(
            f'<p class="kb-under">The cited passage:</p><div class="kb-passage-text">{html.escape(view.passage)}</div>'
        )
    return "".join(out)


def _box(box: tuple[int, int, int, int], width: int, height: int, kind: str) -> str:
    """A highlight's rectangle over the drawn page, in percent of its size (the image scales with the panel)."""
    left, top, right, bottom = box
    w, h = max(width, 1), max(height, 1)
    style = (
        f"left:{100 * left / w:.3f}%;top:{100 * top / h:.3f}%;"
        f"width:{100 * (right - left) / w:.3f}%;height:{100 * (bottom - top) / h:.3f}%"
    )
    return f'<div class="kb-box {kind}" style="{style}"></div>'


def _page_nav(
    page: int,
    pages: int,
    previous: int | None,
    following: int | None,
    address: Address,
    sentence: str,
    cited: int | None,
) -> str:
    cited = cited or page
    parts = []
    if previous:
        parts.append(_page_link(address, sentence, previous, cited, "‹ Previous page", "kb-prev-page"))
    parts.append(f'<span class="kb-page-number">page {page} of {pages}</span>')
    if following:
        parts.append(_page_link(address, sentence, following, cited, "Next page ›", "kb-next-page"))
    return f'<nav class="kb-pages">{"".join(parts)}</nav>'


def _page_link(address: Address, sentence: str, page: int, cited: int, label: str, css: str = "") -> str:
    query = {"page": str(page), "cited": str(cited)} | ({"sentence": sentence} if sentence else {})
    href = source_address(address.knowledge_base, address.source_id, address.chunk_id)
    href += ("&" if address.chunk_id else "?") + urlencode(query)
    return f'<a class="{css}" href="{html.escape(href, quote=True)}" target="_self">{html.escape(label)}</a>'


def refused_page() -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title>'
        f'<style>{PAGE_CSS}</style></head><body><p class="kb-note">{REFUSED}</p></body></html>'
    )


class SourceRoute:
    """The ASGI app answering `/source/<knowledge base>/<source id>`: the page, made in a thread (drawing runs
    in the viewer's worker process). A class, so Starlette routes it as an ASGI app."""

    def __init__(self, pages: SourcePages) -> None:
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio
        from starlette.responses import HTMLResponse, PlainTextResponse

        if scope["type"] != "http":
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await PlainTextResponse("method not allowed", 405)(scope, receive, send)
            return
        path = scope.get("path", "")
        query = scope.get("query_string", b"").decode("latin-1")
        status, page = await anyio.to_thread.run_sync(self.pages.respond, path, query)
        headers = {"cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
        await HTMLResponse(page, status, headers=headers)(scope, receive, send)


# ---- the panel in the app's page ----------------------------------------------------------------------------

PANEL_HTML = """
<div id="kb-viewer" role="dialog" aria-label="Cited source" hidden>
  <div class="kb-viewer-bar">
    <button type="button" data-kb="previous" title="The previous citation">‹ Citation</button>
    <span class="kb-viewer-count" data-kb-count></span>
    <button type="button" data-kb="next" title="The next citation">Citation ›</button>
    <a class="kb-viewer-own" data-kb-own href="#" target="_blank" title="Open in a tab of its own">↗</a>
    <button type="button" data-kb="close" title="Close (Esc)" aria-label="Close">✕</button>
  </div>
  <iframe id="kb-viewer-frame" name="kb-viewer-frame" title="The cited source"></iframe>
</div>
"""
PANEL_CSS = """
#kb-viewer { position: fixed; top: 0; right: 0; bottom: 0; width: min(46vw, 820px); z-index: 1000;
  display: flex; flex-direction: column; background: var(--background-fill-primary, #fff);
  border-left: 1px solid var(--border-color-primary, #e5e7eb); box-shadow: -4px 0 16px rgba(0,0,0,.12); }
#kb-viewer[hidden] { display: none; }
#kb-viewer .kb-viewer-bar { display: flex; gap: 6px; align-items: center; padding: 6px 8px;
  border-bottom: 1px solid var(--border-color-primary, #e5e7eb); }
#kb-viewer .kb-viewer-bar button, #kb-viewer .kb-viewer-own { border: 1px solid var(--border-color-primary, #d1d5db);
  border-radius: 6px; padding: 2px 10px; background: var(--button-secondary-background-fill, #f3f4f6);
  cursor: pointer; font-size: 14px; text-decoration: none; color: inherit; }
#kb-viewer .kb-viewer-count { font-size: 13px; min-width: 3em; text-align: center; }
#kb-viewer [data-kb=close] { margin-left: auto; }
#kb-viewer iframe { flex: 1; width: 100%; border: 0; background: #fff; }
@media (max-width: 640px) { #kb-viewer { width: 100vw; } }
"""
# One listener for the whole page (Gradio re-renders the chat's messages): a click on a citation's link in the
# chat or the sources panel opens it in the panel; the panel's buttons go to the answer's next or previous
# citation, or close it (Esc too). A click with a modifier key opens the address as a page of its own.
PANEL_JS = """
() => {
  if (window.__kbViewer) return;
  window.__kbViewer = true;
  let list = [], at = -1;
  const panel = () => document.getElementById('kb-viewer');
  const isSource = a => { try { return new URL(a.href, location.href).pathname.startsWith('/source/'); }
                          catch (e) { return false; } };
  function show(href) {
    const p = panel();
    if (!p) return;
    p.hidden = false;
    p.querySelector('iframe').setAttribute('src', href);
    p.querySelector('[data-kb-own]').setAttribute('href', href);
    p.querySelector('[data-kb-count]').textContent = list.length ? `${at + 1} / ${list.length}` : '';
    p.querySelector('[data-kb=previous]').disabled = at <= 0;
    p.querySelector('[data-kb=next]').disabled = at < 0 || at >= list.length - 1;
  }
  function close() {
    const p = panel();
    if (!p || p.hidden) return;
    p.hidden = true;
    p.querySelector('iframe').removeAttribute('src');
  }
  document.addEventListener('click', e => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    const a = target.closest('a[href]');
    const where = a && (a.closest('#chatbot') || a.closest('#sources-panel'));
    if (a && where && isSource(a)) {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      const scope = a.closest('.message-row, .message, [data-testid=bot]') || where;
      const base = h => h.split('&sentence=')[0];
      const seen = new Set();
      list = [];
      for (const x of scope.querySelectorAll('a[href]')) {
        if (isSource(x) && !seen.has(base(x.getAttribute('href')))) {
          seen.add(base(x.getAttribute('href')));
          list.push(x.getAttribute('href'));
        }
      }
      at = list.findIndex(h => base(h) === base(a.getAttribute('href')));
      show(a.getAttribute('href'));
      return;
    }
    const button = target.closest('#kb-viewer [data-kb]');
    if (!button) return;
    const act = button.getAttribute('data-kb');
    if (act === 'close') close();
    else if (act === 'next' && at < list.length - 1) { at += 1; show(list[at]); }
    else if (act === 'previous' && at > 0) { at -= 1; show(list[at]); }
  }, true);
  document.addEventListener('keydown', e => { if (e.key === 'Escape') close(); });
}
"""
