"""A document's text as safe HTML, the cited passage wrapped in `<mark class="kb-passage">` and the words that back
the answer in `<mark class="kb-backing">` inside it.

Markdown is rendered by markdown-it-py with raw HTML off (a `<script>` in a document is shown as text), images
replaced by their alt text (nothing loads from elsewhere), then cleaned by nh3 (the Rust ammonia sanitiser) with
a short list of tags, no event handlers or styles, and links only to http(s) and mailto addresses, opened by the
user's click alone. The highlight is placed by private-use characters put into the text before rendering and
turned into `<mark>` elements in each text run after it, so a passage that spans paragraphs or list items gives
valid nesting; the same characters in a document are replaced first, so a document cannot forge a highlight.
Long documents are cut to a window around the passage before rendering.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from viewer.locate import Span

if TYPE_CHECKING:
    from markdown_it.token import Token

PASSAGE, BACKING = "kb-passage", "kb-backing"
P_ON, P_OFF, B_ON, B_OFF = "\ue000", "\ue001", "\ue002", "\ue003"
SENTINELS = str.maketrans({c: "\ufffd" for c in (P_ON, P_OFF, B_ON, B_OFF)})
TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code", "em",
    "strong", "del", "s", "a", "table", "thead", "tbody", "tr", "th", "td", "mark", "div", "span",
}  # fmt: skip
CLASSES = {
    "mark": {PASSAGE, BACKING},
    "div": {"kb-doc", "kb-markdown", "kb-text", "kb-grid"},
    "span": {"kb-row"},
    "tr": {"kb-header"},
}
FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
TAG_OR_TEXT = re.compile(r"(<[^>]*>)")


def clean(fragment: str) -> str:
    """The last word on what reaches a page: nh3 with this viewer's tags and classes, no other attributes than
    a link's address (http, https, mailto; nothing relative), no comments."""
    import nh3

    return nh3.clean(
        fragment,
        tags=TAGS,
        clean_content_tags={"script", "style"},
        attributes={"a": {"href"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}, "mark": {"id"}},
        allowed_classes=CLASSES,
        url_schemes={"http", "https", "mailto"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def with_sentinels(text: str, passage: Sequence[Span], backing: Sequence[Span], markdown: bool) -> str:
    """`text` with the highlight's boundaries put in as private-use characters. In Markdown a boundary moves
    onto the nearest word character, so none lands inside block syntax ("## ", "- ", "|")."""
    text = text.translate(SENTINELS)
    events: list[tuple[int, int, str]] = []
    for spans, on, off in ((passage, P_ON, P_OFF), (backing, B_ON, B_OFF)):
        for start, end in spans:
            if markdown:
                start, end = _onto_words(text, start, end)
            if start < end:
                events += [(start, 1, on), (end, 0, off)]
    out, at = [], 0
    for position, _, mark in sorted(events):
        out += [text[at:position], mark]
        at = position
    return "".join([*out, text[at:]])


def _onto_words(text: str, start: int, end: int) -> Span:
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum() and text[end - 1] not in ".!?)":
        end -= 1
    return start, end


def marked(fragment: str) -> str:
    """Rendered HTML whose text holds the sentinels → the same with each marked run of text in `<mark>`; the
    first passage mark gets id "kb-passage-start" to scroll to."""
    out: list[str] = []
    passage = backing = False
    first = True
    for piece in TAG_OR_TEXT.split(fragment):
        if piece.startswith("<"):
            out.append(piece.translate(str.maketrans("", "", P_ON + P_OFF + B_ON + B_OFF)))
            continue
        for part in re.split(f"([{P_ON}{P_OFF}{B_ON}{B_OFF}])", piece):
            if part in (P_ON, P_OFF, B_ON, B_OFF):
                passage = part == P_ON or (passage and part not in (P_OFF,))
                backing = part == B_ON or (backing and part != B_OFF)
                continue
            if not part.strip():  # the whitespace between two list items is no place for a <mark>
                out.append(part)
                continue
            if backing:
                part = f'<mark class="{BACKING}">{part}</mark>'
            if passage or backing:
                anchor = ' id="kb-passage-start"' if first else ""
                first = False
                part = f'<mark class="{PASSAGE}"{anchor}>{part}</mark>'
            out.append(part)
    return "".join(out)


def markdown_html(text: str, passage: Sequence[Span] = (), backing: Sequence[Span] = ()) -> str:
    """Markdown → safe HTML with the highlight (see the module docstring)."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    renderer.enable(["table", "strikethrough"])
    renderer.add_render_rule("image", _alt_text)
    body = renderer.render(with_sentinels(text, passage, backing, markdown=True))
    return clean(f'<div class="kb-doc kb-markdown">{marked(body)}</div>')


def _alt_text(renderer: object, tokens: Sequence[Token], index: int, options: object, env: object) -> str:
    """An image as its alt text: a document's image would load from wherever its address points."""
    return html.escape("".join(child.content for child in tokens[index].children or []))


def text_html(text: str, passage: Sequence[Span] = (), backing: Sequence[Span] = ()) -> str:
    """Plain text (and CSV rows) → preformatted safe HTML with the highlight."""
    body = html.escape(with_sentinels(text, passage, backing, markdown=False), quote=False)
    return clean(f'<div class="kb-doc kb-text"><pre>{marked(body)}</pre></div>')


def grid_html(
    name: str,
    rows: Sequence[dict[int, str]],
    header: int | None,
    chosen: Sequence[int],
    passage: set[int],
    strong: set[int],
) -> str:
    """A sheet's rows as a table (a header row if it has one): rows `chosen` (their indices), the `passage`
    ones marked, the `strong` ones (backing the answer) marked more strongly; at most MAX_COLUMNS columns."""
    columns = sorted({c for n in chosen for c in rows[n]} | (set(rows[header]) if header is not None else set()))
    columns = columns[:MAX_COLUMNS]
    lines = [f"<h2>{html.escape(name)}</h2><table>"]
    if header is not None:
        titles = "".join(f"<th>{html.escape(rows[header].get(c, ''))}</th>" for c in columns)
        lines.append(f'<thead><tr class="kb-header">{titles}</tr></thead>')
    lines.append("<tbody>")
    for n in chosen:
        cells = []
        for column in columns:
            cell = html.escape(rows[n].get(column, ""))
            if n in strong:
                cell = f'<mark class="{BACKING}">{cell}</mark>'
            if n in strong or n in passage:
                cell = f'<mark class="{PASSAGE}">{cell}</mark>'
            cells.append(f"<td>{cell}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return clean(f'<div class="kb-doc kb-grid">{"".join(lines)}</div>')


MAX_COLUMNS = 40


def window(text: str, start: int, end: int, size: int, markdown: bool) -> tuple[int, int, str]:
    """(from, to, prefix): the part of `text` to show around [start, end), `size` characters either side, cut at
    blank lines; `prefix` reopens a fenced code block the cut fell inside."""
    if len(text) <= 2 * size + (end - start):
        return 0, len(text), ""
    low = max(0, start - size)
    high = min(len(text), end + size)
    blank = text.rfind("\n\n", max(0, low - 2000), low + 1)
    low = blank + 2 if blank >= 0 else low
    blank = text.find("\n\n", high)
    high = blank if 0 <= blank < high + 2000 else high
    prefix = ""
    if markdown and len(FENCE_LINE.findall(text, 0, low)) % 2:
        prefix = "```\n"
    return low, high, prefix
