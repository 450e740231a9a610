"""A model's answer as Markdown that the chat can render without sending anything off the machine.

An answer steered by a document (or a web page) can hold `![ ](http://elsewhere/pixel?data=…)`: rendered, the
browser asks that address, and the data goes with it. Here images are dropped (their alt text stays), links stay
only to this machine or to a source the knowledge base records (others keep their text), and raw HTML, autolinks
and bare addresses are shown as text. Code (fenced blocks, inline spans) is left as written: nothing in it renders.
This works on Markdown's syntax, so it is a second line: the page's Content-Security-Policy (`ui.server`) is what
guarantees that no image, script or style loads from anywhere but the app. (Written by hand: the Markdown cleaners
on PyPI clean HTML, and turning the answer into HTML here would lose Gradio's own rendering of it.)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterator
from urllib.parse import urlsplit

PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # what a backslash escapes in CommonMark
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def _destination(name: str) -> str:
    """`](url "title")`, the url captured as `name` (one level of parentheses inside it, as most links have)."""
    url = r"<[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*"
    title = r"\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)"
    return rf"\]\(\s*(?P<{name}>{url})(?:\s+(?:{title}))?\s*\)"


INLINE = re.compile(
    r"(?P<image>!\[(?P<alt>[^\[\]\n]*)" + _destination("image_url") + ")"
    r"|(?P<link>\[(?P<label>[^\[\]\n]*)" + _destination("link_url") + ")"
    r"|(?P<tail>" + _destination("tail_url") + ")"  # the end of a link whose text holds brackets
    r"|(?P<opening>\]\()"  # a link whose address the patterns above do not read: never a link
    r"|(?P<definition>\]:)"
    r"|(?P<tag><(?=[A-Za-z/!?]))"
    r"|(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{1,31}(?=://))"
    r"|(?P<www>\bwww(?=\.))"
    r"|(?P<email>(?<=[A-Za-z0-9._+-])@(?=[A-Za-z0-9-]+\.))",
    re.IGNORECASE,
)
URL_AT = re.compile(r"[^\s<>()\[\]`]*")


def safe_markdown(text: str, sources: Collection[str] = ()) -> str:
    """`text` with images dropped and links kept only to this machine or to `sources` (the recorded ones)."""
    keep = _keeper(sources)
    return "".join(part if code else _defuse(part, keep) for code, part in _pieces(text))


def _keeper(sources: Collection[str]) -> Callable[[str], bool]:
    recorded = {s.strip() for s in sources if "://" in s}

    def keep(url: str) -> bool:
        url = url.strip().strip("<>")
        if url in recorded:
            return True
        if url.startswith(("/", "#", "?")) and not url.startswith("//"):
            return True  # this app's own pages
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and _is_loopback(parts.hostname or "")

    return keep


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _defuse(text: str, keep: Callable[[str], bool]) -> str:
    """Markdown text outside code, made inert (see the module docstring)."""

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "image":
            return _defuse(match.group("alt"), keep)
        if kind == "link":
            return match.group(0) if keep(match.group("link_url")) else _defuse(match.group("label"), keep)
        if kind == "tail":
            return match.group(0) if keep(match.group("tail_url")) else "]"
        if kind == "opening":
            return "]\\("
        if kind == "definition":
            return "\\]:"
        if kind == "tag":
            return "&lt;"
        if kind == "scheme":
            address = match.group(0) + URL_AT.match(text, match.end()).group(0)  # type: ignore[union-attr]
            return match.group(0) if keep(address.rstrip(".,;:!?")) else match.group(0) + "\\"
        if kind == "www":
            return "www\\"
        return "\\@"

    return INLINE.sub(replace, text)


def _pieces(text: str) -> Iterator[tuple[bool, str]]:
    """(is code, piece) for the whole of `text`: fenced code blocks, inline code spans (one line at most: a span
    Markdown might not see as one must never hide a link), and the text between."""
    lines = text.splitlines(keepends=True)
    fence = ""
    for line in lines:
        if fence:
            yield True, line
            if re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", line):
                fence = ""
            continue
        opened = FENCE.match(line.rstrip("\r\n"))
        if opened and not (opened.group(1)[0] == "`" and "`" in opened.group(2)):
            fence = opened.group(1)
            yield True, line
            continue
        yield from _spans(line)


def _spans(line: str) -> Iterator[tuple[bool, str]]:
    """One line's inline code spans and the text around them, with CommonMark's rules: a backslash escapes the
    next punctuation character (an escaped backtick opens nothing), and a run of n backticks closes at the next
    run of exactly n."""
    start = i = 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line) and line[i + 1] in PUNCTUATION:
            i += 2
            continue
        if char != "`":
            i += 1
            continue
        run = len(line) - i - len(line[i:].lstrip("`"))
        end = _closing(line, i + run, run)
        if end is None:
            i += run
            continue
        if i > start:
            yield False, line[start:i]
        yield True, line[i:end]
        start = i = end
    if start < len(line):
        yield False, line[start:]


def _closing(line: str, at: int, run: int) -> int | None:
    """Where the code span opened by `run` backticks ending at `at` ends (after its closing run), or None."""
    for found in re.finditer(r"`+", line[at:]):
        if len(found.group(0)) == run:
            return at + found.end()
    return None
