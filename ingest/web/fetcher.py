"""URL → Page: a guarded fetch, a content-type check, extraction, and Chromium when the text needs JavaScript."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingest.web.browser import Browser
from ingest.web.config import FetchConfig
from ingest.web.errors import FetchError
from ingest.web.extract import Extracted, decode, html_to_page, text_to_page
from ingest.web.fetch import Fetched, HttpFetcher
from ingest.web.guard import Guard, Resolver

HTML = {"text/html", "application/xhtml+xml"}
TEXT = {"text/plain", "text/markdown", "text/x-markdown"}
PDF = {"application/pdf", "application/x-pdf"}
GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/download", "application/x-download"}


@dataclass
class Page:
    """A fetched page. PDFs come as `raw` bytes with empty `markdown`: turning them into text is the caller's job."""

    url: str
    final_url: str
    title: str
    markdown: str
    content_type: str
    kind: str  # html | text | pdf
    fetched_at: datetime
    raw: bytes = b""
    links: list[str] = field(default_factory=list)
    canonical: str | None = None
    rendered: bool = False


class WebFetcher:
    """Fetches pages through one guarded httpx client and, when needed, one shared Chromium. Use as a context."""

    def __init__(
        self, config: FetchConfig | None = None, *, guard: Guard | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config or FetchConfig()
        self.guard = guard or Guard(self.config.allow_hosts, resolver)
        self.http = HttpFetcher(self.config, self.guard)
        self._browser: Browser | None = None
        self._browser_error: FetchError | None = None

    def __enter__(self) -> WebFetcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        self.http.close()

    @property
    def browser(self) -> Browser:
        if self._browser is None:
            self._browser = Browser(self.config, self.guard)
        return self._browser

    def get(self, url: str) -> Fetched:
        """The raw final response (robots.txt, sitemaps); 4xx/5xx are returned, not raised."""
        return self.http.get(url)

    def fetch_page(self, url: str, *, render: bool | None = None) -> Page:
        """`render`: True forces Chromium, False never uses it, None decides from the HTML."""
        fetched = self.http.get(url)
        if fetched.status >= 400:
            raise FetchError(f"HTTP {fetched.status} {fetched.reason}".strip())
        if fetched.status >= 300:
            raise FetchError(f"HTTP {fetched.status} redirect without a usable Location")
        kind = classify(fetched)
        fetched_at = datetime.now(UTC)
        page = Page(url, fetched.final_url, "", "", fetched.mime or kind, kind, fetched_at)
        if kind == "pdf":
            page.raw = fetched.body
            return page
        text, _ = decode(fetched.body, fetched.charset, html=kind == "html")
        if kind == "text":
            return _filled(page, text_to_page(text, fetched.final_url))
        extracted = html_to_page(text, fetched.final_url)
        if render or (render is None and extracted.script_hint):
            try:
                final_url, html = self._render(fetched.final_url)
                extracted = html_to_page(html, final_url)
                page.final_url, page.rendered = final_url, True
            except FetchError:
                if render or not extracted.markdown:
                    raise
        return _filled(page, extracted)

    def _render(self, url: str) -> tuple[str, str]:
        if self._browser_error is not None:  # don't relaunch a browser that cannot start, page after page
            raise self._browser_error
        try:
            return self.browser.render(url)
        except FetchError as exc:
            if "Chromium" in str(exc):
                self._browser_error = exc
            raise


def fetch_page(url: str, config: FetchConfig | None = None, *, render: bool | None = None) -> Page:
    """One page with a fetcher of its own; reuse a `WebFetcher` for several."""
    with WebFetcher(config) as fetcher:
        return fetcher.fetch_page(url, render=render)


def classify(fetched: Fetched) -> str:
    """html, text or pdf; any other content type is refused with a clear message."""
    mime, body = fetched.mime, fetched.body
    if mime in HTML:
        return "html"
    if mime in TEXT:
        return "text"
    if mime in PDF or (mime in GENERIC and body.startswith(b"%PDF-")):
        return "pdf"
    if not mime:
        head = body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            return "html"
        if body and b"\x00" not in body[:8192]:
            return "text"
    raise FetchError(f"unsupported content type {mime or 'unknown'} (HTML, plain text and PDF are accepted)")


def _filled(page: Page, extracted: Extracted) -> Page:
    if not extracted.markdown.strip():
        raise FetchError("no text found on the page")
    page.title = extracted.title or page.final_url
    page.markdown = extracted.markdown
    page.links = extracted.links
    page.canonical = extracted.canonical
    return page
