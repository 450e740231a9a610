"""An independent reader of text given to a model: the `<web_page>` elements Python's own HTML parser finds in it
(not the implementation's patterns), with their attributes, and how many are closed."""

from __future__ import annotations

from html.parser import HTMLParser


class Wrappers(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.opened: list[dict[str, str | None]] = []
        self.closed = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "web_page":
            self.opened.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        self.closed += tag == "web_page"
