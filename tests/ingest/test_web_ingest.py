"""URL ingestion into a real knowledge base: single pages, crawls, sitemaps, re-ingest, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ingest import IngestConfig, Ingestor, build_ingestor
from ingest.web import WebFetcher, canonical_url, ingest_web, parse_sitemap
from knowledge_base import KnowledgeBase
from tests.support.web_site import Site, web_site  # noqa: F401


@pytest.fixture
def web_ingestor(embedded_kb: KnowledgeBase) -> Ingestor:
    return build_ingestor(IngestConfig(), embedded_kb)


@pytest.fixture
def fetcher(web_site: Site) -> Iterator[WebFetcher]:  # noqa: F811
    with web_site.fetcher() as fetcher:
        yield fetcher


def _statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {o.source: o.status for o in report.outcomes}


def test_one_page_with_metadata_then_unchanged(
    web_site: Site,  # noqa: F811
    web_ingestor: Ingestor,
    embedded_kb: KnowledgeBase,
    fetcher: WebFetcher,
) -> None:
    url = web_site.url + "/notes.txt"
    report = ingest_web(web_ingestor, fetcher, [url])
    assert _statuses(report) == {url: "added"} and report.embedded >= 1
    [record] = embedded_kb.sources()
    assert (record.source, record.kind, record.doc_type) == (url, "text", "127.0.0.1")
    hit = embedded_kb.search("tyre pressure for city tyres", k=1)[0]
    meta = hit.metadata
    assert meta["source"] == url and meta["url"] == url and meta["title"] == "Plain notes"
    assert meta["fetched_at"].endswith("+00:00")

    again = ingest_web(web_ingestor, fetcher, [url])
    assert _statuses(again) == {url: "unchanged"} and again.embedded == 0


def test_canonical_source_and_failures_reported_like_files(
    web_site: Site,  # noqa: F811
    web_ingestor: Ingestor,
    fetcher: WebFetcher,
) -> None:
    urls = [web_site.url + p for p in ("/article", "/missing", "/binary", "/huge", "/redirect/1")]
    report = ingest_web(web_ingestor, fetcher, urls, doc_type="guides")
    statuses = {o.source: (o.status, o.message) for o in report.outcomes}
    assert statuses[web_site.url + "/guides/brakes"] == ("added", "")  # its rel=canonical
    assert statuses[web_site.url + "/missing"] == ("failed", "HTTP 404 Not Found")
    assert statuses[web_site.url + "/binary"][1].startswith("unsupported content type application/octet-stream")
    assert statuses[web_site.url + "/huge"][1] == "page too large (2.0 MB > 1.0 MB)"
    assert "127.0.0.2 is refused" in statuses[web_site.url + "/redirect/1"][1]
    assert report.succeeded and report.counts["failed"] == 4


def test_pdf_page_numbers_survive(
    web_site: Site,  # noqa: F811
    web_ingestor: Ingestor,
    embedded_kb: KnowledgeBase,
    fetcher: WebFetcher,
) -> None:
    url = web_site.url + "/doc.pdf"
    report = ingest_web(web_ingestor, fetcher, [url])
    assert _statuses(report) == {url: "added"}
    assert embedded_kb.sources()[0].kind == "pdf"
    hits = embedded_kb.search("donation", k=3)
    assert hits and all(h.metadata["source"] == url and h.metadata.get("page") for h in hits)


def test_crawl_is_breadth_first_same_site_polite_and_deduplicated(
    web_site: Site,  # noqa: F811
    web_ingestor: Ingestor,
    fetcher: WebFetcher,
) -> None:
    base = web_site.url
    start = len(web_site.hits)
    report = ingest_web(web_ingestor, fetcher, [base + "/article"], crawl=1)
    added = [o.source for o in report.outcomes if o.status == "added"]
    # depth 1 from the article, in document order; home/about/shop/privacy are 404s on this site
    assert added == [base + "/guides/brakes", base + "/guides/pads.html", base + "/guides/cables"]
    statuses = _statuses(report)
    assert statuses[base + "/private/notes"] == "skipped"  # robots.txt
    assert web_site.private_url + "/outside" not in statuses  # another site: never queued
    assert base + "/guides/deep" not in statuses  # depth 2
    fetched = web_site.hits[start:]
    assert "/private/notes" not in fetched and fetched.count("/guides/cables") == 1  # #top is the same page
    assert fetched[0] == "/article" and "/robots.txt" in fetched

    deeper = ingest_web(web_ingestor, fetcher, [base + "/article"], crawl=2)
    statuses = _statuses(deeper)
    assert statuses[base + "/guides/deep"] == "added"
    assert statuses[base + "/guides/pads.html"] == "unchanged" and deeper.counts["updated"] == 0
    [copy] = [o for o in deeper.outcomes if o.source == base + "/guides/copy"]  # rel=canonical: /guides/cables
    assert (copy.status, copy.message) == ("skipped", f"duplicate of {base}/guides/cables")


def test_page_cap(web_site: Site, web_ingestor: Ingestor, fetcher: WebFetcher) -> None:  # noqa: F811
    report = ingest_web(web_ingestor, fetcher, [web_site.url + "/article"], crawl=3, max_pages=2)
    assert report.counts["added"] == 2
    assert any(o.message.startswith("page cap reached (--max-pages 2)") for o in report.of("skipped"))


def test_polite_delay(web_site: Site, web_ingestor: Ingestor, fetcher: WebFetcher) -> None:  # noqa: F811
    urls = [web_site.url + p for p in ("/notes.txt", "/cp1252", "/meta-utf8")]
    with web_site.fetcher(crawl_delay_s=0.4) as slow:
        started = time.monotonic()
        ingest_web(web_ingestor, slow, urls)
    assert time.monotonic() - started >= 0.8  # two pauses between three requests to one site


@pytest.mark.parametrize("sitemap", ["/sitemap.xml", "/sitemap-index.xml"])
def test_sitemap(
    web_site: Site,  # noqa: F811
    web_ingestor: Ingestor,
    fetcher: WebFetcher,
    sitemap: str,
) -> None:
    base = web_site.url
    report = ingest_web(web_ingestor, fetcher, [], sitemaps=[base + sitemap])
    statuses = _statuses(report)
    assert [o.source for o in report.of("added")] == [base + "/guides/brakes", base + "/guides/pads.html"]
    assert statuses[base + "/private/notes"] == "skipped"  # robots.txt
    assert statuses[web_site.private_url + "/outside"] == "skipped"  # not on the sitemap's site
    missing = ingest_web(web_ingestor, fetcher, [], sitemaps=[base + "/nope.xml"])
    assert missing.outcomes[0].message == "sitemap: HTTP 404 Not Found" and not missing.succeeded


def test_parse_sitemap_variants() -> None:
    gz = __import__("gzip").compress(b"<urlset><url><loc>http://a.test/x</loc></url></urlset>")
    assert parse_sitemap(gz, 2**20) == ("urls", ["http://a.test/x"])
    assert parse_sitemap(b"http://a.test/1\nnot a url\nhttps://a.test/2\n", 2**20) == (
        "urls",
        ["http://a.test/1", "https://a.test/2"],
    )
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><urlset><url><loc>&a;</loc></url></urlset>'
    kind, locs = parse_sitemap(bomb, 2**20)
    assert kind == "urls" and locs in ([""], ["aaaaaaaaaa"])  # entities are not expanded into a crawl list


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM:80/a/../b?utm_source=x&id=3#frag", "http://example.com/b?id=3"),
        ("https://example.com:443", "https://example.com/"),
        ("http://example.com:8080/p/", "http://example.com:8080/p/"),
        ("http://[::1]:80/x", "http://[::1]/x"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical
