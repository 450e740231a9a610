"""Web pages → text sources: single URLs, same-site crawls and sitemaps, through the guarded fetcher.

Pages are fetched lazily, inside the ingestor's reader thread, and handed to `Ingestor.run_texts`, so a page
whose extracted text is unchanged embeds nothing. Crawls are breadth-first in document order, de-duplicated by
canonical URL, polite (robots.txt, a delay between requests to one site) and capped at `max_pages`.
"""

from __future__ import annotations

import gzip
import io
import time
import urllib.robotparser
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import httpx

from ingest.loaders import LoadError, load
from ingest.pipeline import Ingestor, TextSource
from ingest.report import IngestReport, Outcome, Progress
from ingest.web.errors import FetchError
from ingest.web.fetcher import Page, WebFetcher

TRACKING = ("utm_", "fbclid=", "gclid=", "mc_cid=", "mc_eid=")
NOT_PAGES = {
    ".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".ico", ".bmp", ".css", ".js", ".mjs", ".json", ".zip",
    ".gz", ".tgz", ".tar", ".7z", ".rar", ".mp3", ".mp4", ".m4a", ".avi", ".mov", ".webm", ".woff", ".woff2",
    ".ttf", ".otf", ".exe", ".dmg", ".iso", ".apk", ".deb", ".rpm", ".doc", ".xls", ".ppt", ".xlsx", ".pptx",
}  # fmt: skip
MAX_SITEMAPS = 50
MAX_CRAWL_DELAY_S = 30.0


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def ingest_web(
    ingestor: Ingestor,
    fetcher: WebFetcher,
    urls: Iterable[str],
    *,
    crawl: int = 0,
    max_pages: int = 50,
    sitemaps: Iterable[str] = (),
    render: bool | None = None,
    doc_type: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest pages; one outcome per page (or problem), like files. `render=None` lets each page decide."""
    progress = progress or Progress()
    crawler = Crawler(
        fetcher,
        crawl=crawl,
        max_pages=max_pages,
        render=render,
        doc_type=doc_type,
        delay_s=fetcher.config.crawl_delay_s,
    )
    report = ingestor.run_texts(crawler.sources(list(urls), list(sitemaps)), progress)
    for outcome in crawler.problems:
        report.outcomes.append(outcome)
        progress.file_done(outcome)
    return report


def combine(*reports: IngestReport) -> IngestReport:
    """One report for a call that ingested files and URLs."""
    total = IngestReport()
    for report in reports:
        total.outcomes.extend(report.outcomes)
        total.embedded += report.embedded
        total.reused += report.reused
        total.seconds += report.seconds
    return total


@dataclass
class Queued:
    url: str
    depth: int
    site: str
    named: bool  # given by the user: robots.txt is for crawlers, not for the pages a user names


@dataclass
class Crawler:
    fetcher: WebFetcher
    crawl: int = 0
    max_pages: int = 50
    render: bool | None = None
    doc_type: str | None = None
    delay_s: float = 1.0
    problems: list[Outcome] = field(default_factory=list)
    _robots: dict[str, urllib.robotparser.RobotFileParser | None] = field(default_factory=dict)
    _last_request: dict[str, float] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict)

    def sources(self, urls: list[str], sitemaps: list[str]) -> Iterator[TextSource]:
        """Text sources in breadth-first order; failures and skips are collected in `problems`."""
        queue: deque[Queued] = deque()
        seen: set[str] = set()
        for url in urls:
            self._push(queue, seen, url, 0, site_of(url), named=True)
        for sitemap in sitemaps:
            for url in self.sitemap_urls(sitemap):
                self._push(queue, seen, url, 0, site_of(sitemap), named=False)
        done: set[str] = set()
        pages = 0
        while queue:
            if pages >= self.max_pages:
                message = f"page cap reached (--max-pages {self.max_pages}); {len(queue)} more pages not fetched"
                self.problems.append(Outcome(queue[0].url, "skipped", message))
                return
            item = queue.popleft()
            if not item.named and not self.allowed_by_robots(item.url):
                self.problems.append(Outcome(item.url, "skipped", "disallowed by robots.txt"))
                continue
            page = self._fetch(item.url)
            if page is None:
                continue
            source = self._source_of(page, item)
            if source in done:
                if source != item.url:
                    self.problems.append(Outcome(item.url, "skipped", f"duplicate of {source}"))
                continue
            done.add(source)
            seen.add(source)
            pages += 1
            text = self._text_source(page, source)
            if text is not None:
                yield text
            if item.depth < self.crawl:
                for link in page.links:
                    if site_of(link) == item.site and _looks_like_page(link):
                        self._push(queue, seen, link, item.depth + 1, item.site, named=False)

    def sitemap_urls(self, sitemap: str, depth: int = 0, budget: list[int] | None = None) -> list[str]:
        """Page URLs a sitemap (or sitemap index, or text sitemap) lists, on the sitemap's own site."""
        budget = budget if budget is not None else [MAX_SITEMAPS]
        budget[0] -= 1
        try:
            self._wait(sitemap)
            fetched = self.fetcher.get(sitemap)
            if fetched.status >= 400:
                raise FetchError(f"HTTP {fetched.status} {fetched.reason}".strip())
            kind, locs = parse_sitemap(fetched.body, self.fetcher.config.max_bytes)
        except FetchError as exc:
            self.problems.append(Outcome(sitemap, "failed", f"sitemap: {exc}"))
            return []
        site = site_of(sitemap)
        urls: list[str] = []
        for loc in locs:
            absolute = str(httpx.URL(fetched.final_url).join(loc)) if loc else ""
            if not is_url(absolute):
                continue
            if site_of(absolute) != site:
                self.problems.append(Outcome(absolute, "skipped", "not on the sitemap's site"))
            elif kind == "index":
                if depth < 2 and budget[0] > 0:
                    urls.extend(self.sitemap_urls(absolute, depth + 1, budget))
            else:
                urls.append(absolute)
        return urls

    def allowed_by_robots(self, url: str) -> bool:
        origin = _origin(url)
        if origin not in self._robots:
            self._robots[origin] = self._load_robots(origin)
        robots = self._robots[origin]
        if robots is None:  # robots.txt unreachable (5xx, timeout): crawl nothing there, per RFC 9309
            return False
        return robots.can_fetch(self.fetcher.config.user_agent, url)

    def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | None:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            self._wait(origin)
            fetched = self.fetcher.get(origin + "/robots.txt")
        except FetchError:
            return None
        if fetched.status >= 500:
            return None
        if fetched.status >= 400:
            parser.allow_all = True  # type: ignore[attr-defined]  # how RobotFileParser itself marks "no robots.txt"
            return parser
        parser.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
        delay = parser.crawl_delay(self.fetcher.config.user_agent)
        if delay:
            self._delays[origin] = min(float(delay), MAX_CRAWL_DELAY_S)
        return parser

    def _wait(self, url: str) -> None:
        """The polite delay between two requests to one site (the larger of ours and robots.txt's)."""
        origin = _origin(url)
        delay = max(self.delay_s, self._delays.get(origin, 0.0))
        last = self._last_request.get(origin)
        if last is not None and delay > 0:
            time.sleep(max(0.0, last + delay - time.monotonic()))
        self._last_request[origin] = time.monotonic()

    def _fetch(self, url: str) -> Page | None:
        try:
            self._wait(url)
            return self.fetcher.fetch_page(url, render=self.render)
        except FetchError as exc:
            self.problems.append(Outcome(url, "failed", str(exc)))
            return None

    def _source_of(self, page: Page, item: Queued) -> str:
        """The page's rel=canonical URL when it stays on the site, else its final URL, normalised."""
        final = canonical_url(page.final_url)
        if page.canonical and is_url(page.canonical) and site_of(page.canonical) == site_of(final):
            return canonical_url(page.canonical)
        return final

    def _text_source(self, page: Page, source: str) -> TextSource | None:
        doc_type = self.doc_type or (httpx.URL(source).host.removeprefix("www.") or "web")
        metadata: dict[str, object] = {"url": source, "fetched_at": page.fetched_at.isoformat(timespec="seconds")}
        if page.kind != "pdf":
            markdown = page.kind == "html" or page.content_type in ("text/markdown", "text/x-markdown")
            return TextSource(source, page.markdown, page.title, doc_type, page.kind, markdown, metadata)
        name = PurePosixPath(httpx.URL(source).path).name or "document.pdf"
        try:
            documents = load(Path(name).with_suffix(".pdf"), page.raw)
        except LoadError as exc:
            self.problems.append(Outcome(source, "failed", str(exc)))
            return None
        text = "\n\n".join(d.page_content for d in documents)
        title = str(documents[0].metadata.get("title") or name)
        return TextSource(source, text, title, doc_type, "pdf", False, metadata, documents=documents)

    @staticmethod
    def _push(queue: deque[Queued], seen: set[str], url: str, depth: int, site: str, named: bool) -> None:
        try:
            key = canonical_url(url)
        except (httpx.InvalidURL, ValueError):
            return
        if key not in seen:
            seen.add(key)
            queue.append(Queued(url if named else key, depth, site, named))


def parse_sitemap(body: bytes, max_bytes: int) -> tuple[str, list[str]]:
    """('index' | 'urls', locations) of an XML sitemap, gzipped or not, or a text sitemap (one URL a line)."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(max_bytes + 1)
        except (OSError, EOFError) as exc:
            raise FetchError(f"bad gzip data: {exc}") from exc
        if len(body) > max_bytes:
            raise FetchError("sitemap too large once unzipped")
    if not body.lstrip().startswith(b"<"):
        lines = body.decode("utf-8", errors="replace").splitlines()
        return "urls", [line.strip() for line in lines if is_url(line.strip())]
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FetchError(f"not a sitemap (bad XML: {exc})") from exc
    kind = "index" if etree.QName(root).localname == "sitemapindex" else "urls"
    locs = [
        (el.text or "").strip() for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "loc"
    ]
    return kind, locs


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and tracking parameters dropped, empty path = /."""
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    netloc = host if parsed.port in (None, default) else f"{host}:{parsed.port}"
    path, _, query = parsed.raw_path.decode("ascii").partition("?")
    kept = "&".join(p for p in query.split("&") if p and not p.lower().startswith(TRACKING))
    return f"{parsed.scheme}://{netloc}{path or '/'}" + (f"?{kept}" if kept else "")


def site_of(url: str) -> str:
    """What 'same site' compares: host without www., and the effective port."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return ""
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    return f"{parsed.host.removeprefix('www.')}:{port}"


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def _looks_like_page(url: str) -> bool:
    return is_url(url) and PurePosixPath(httpx.URL(url).path).suffix.lower() not in NOT_PAGES
