"""The guarded fetcher against the local test site (127.0.0.1, plus 127.0.0.2 as the 'internal' address)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingest.web import FetchError, Refused, WebFetcher, fetch_page
from tests.support.web_site import CLUTTER_WORDS, Site, no_dns, web_site  # noqa: F401


@pytest.fixture(scope="module")
def fetcher(web_site: Site) -> Iterator[WebFetcher]:  # noqa: F811
    with web_site.fetcher() as fetcher:
        yield fetcher


def test_article_is_clean_markdown(web_site: Site, fetcher: WebFetcher) -> None:  # noqa: F811
    page = fetcher.fetch_page(web_site.url + "/article", render=False)
    assert page.kind == "html" and page.content_type == "text/html" and not page.rendered
    assert page.title == "Adjusting rim brakes"
    md = page.markdown
    assert md.startswith("# Adjusting rim brakes")
    assert "## Tools you need" in md and "- A 5 mm hex key" in md and "1. Turn the barrel adjuster" in md
    assert "| Brake pads | 12 EUR |" in md
    assert f"[pad replacement guide]({web_site.url}/guides/pads.html)" in md  # relative to the page, made absolute
    for clutter in CLUTTER_WORDS:
        assert clutter not in md, clutter
    assert page.canonical == web_site.url + "/guides/brakes"
    assert f"{web_site.url}/guides/cables#top" in page.links and f"{web_site.private_url}/outside" in page.links
    assert page.fetched_at.tzinfo is not None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/cp1252", "A “tune-up” costs 45 € at the café workshop; naïve riders"),  # charset in the header
        ("/meta-utf8", "Zürich – the naïve rider’s guide to Øresund"),  # charset only in <meta>
    ],
)
def test_declared_charset_is_honoured(web_site: Site, fetcher: WebFetcher, path: str, expected: str) -> None:  # noqa: F811
    page = fetcher.fetch_page(web_site.url + path)
    assert expected in page.markdown
    assert "Ã" not in page.markdown and "â€" not in page.markdown


def test_plain_text_and_pdf(web_site: Site, fetcher: WebFetcher) -> None:  # noqa: F811
    text = fetcher.fetch_page(web_site.url + "/notes.txt")
    assert text.kind == "text" and "4.5 bar" in text.markdown and text.title == "Plain notes"
    pdf = fetcher.fetch_page(web_site.url + "/doc.pdf")
    assert pdf.kind == "pdf" and pdf.raw.startswith(b"%PDF-") and pdf.markdown == ""


def test_scraper_reads_pdfs_like_pdf_files(web_site: Site, fetcher: WebFetcher) -> None:  # noqa: F811
    from ingest.loaders import load
    from tests.support.paths import SAMPLES
    from tools.scraper import make_scraper

    scrape = make_scraper(fetcher, max_chars=10**6)
    path = SAMPLES / "policies" / "donation-policy.pdf"
    pages = load(path, path.read_bytes())
    assert "\n\n".join(p.page_content for p in pages) in scrape(web_site.url + "/doc.pdf")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "HTTP 404 Not Found"),
        ("/binary", "unsupported content type application/octet-stream (HTML, plain text and PDF are accepted)"),
        ("/image.png", "unsupported content type image/png"),
        ("/huge", "page too large (2.0 MB > 1.0 MB)"),
        ("/huge-stream", "page too large (over 1.0 MB)"),
        ("/redirect/loop", "too many redirects (more than 5)"),
        ("/redirect/file", "redirect to file:///etc/passwd refused: only http and https"),
    ],
)
def test_bad_pages_are_one_clear_line(web_site: Site, fetcher: WebFetcher, path: str, message: str) -> None:  # noqa: F811
    with pytest.raises(FetchError) as caught:
        fetcher.fetch_page(web_site.url + path)
    assert str(caught.value) == message or str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_timeout(web_site: Site) -> None:  # noqa: F811
    with web_site.fetcher(timeout_s=1.0) as fetcher, pytest.raises(FetchError, match=r"^timed out after 1 s$"):
        fetcher.fetch_page(web_site.url + "/slow")


def test_redirect_chain_to_another_loopback_address_is_refused_on_the_hop(web_site: Site) -> None:  # noqa: F811
    before = len(web_site.private_hits)
    with web_site.fetcher() as fetcher, pytest.raises(Refused) as caught:
        fetcher.fetch_page(web_site.url + "/redirect/1")
    assert str(caught.value).startswith(f"redirect to {web_site.private_url}/final refused: 127.0.0.2 is refused")
    assert len(web_site.private_hits) == before
    assert "/redirect/2" in web_site.hits  # the first hop was followed


def test_redirect_chain_ends_there_when_allowed(web_site: Site) -> None:  # noqa: F811
    with web_site.fetcher(allow_hosts="127.0.0.0/8") as fetcher:
        page = fetcher.fetch_page(web_site.url + "/redirect/1")
    assert page.final_url == web_site.private_url + "/final" and "secret-token-42" in page.markdown
    assert "/final" in web_site.private_hits


@pytest.mark.parametrize("allow", ["127.0.0.1", "{host_port}", "127.0.0.0/8", "localhost, 127.0.0.1/32"])
def test_allow_hosts_lets_the_site_through(web_site: Site, allow: str) -> None:  # noqa: F811
    with web_site.fetcher(allow_hosts=allow.format(host_port=web_site.allow)) as fetcher:
        assert fetcher.fetch_page(web_site.url + "/article").title == "Adjusting rim brakes"


@pytest.mark.parametrize("allow", ["", "127.0.0.1:1", "127.0.0.2", "10.0.0.0/8"])
def test_without_an_allow_entry_the_site_is_refused(web_site: Site, allow: str) -> None:  # noqa: F811
    before = len(web_site.hits)
    with web_site.fetcher(allow_hosts=allow) as fetcher, pytest.raises(Refused, match="loopback address"):
        fetcher.fetch_page(web_site.url + "/article")
    assert len(web_site.hits) == before  # refused before connecting


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https URLs are fetched, not 'file'"),
        ("ftp://127.0.0.1/x", "only http and https URLs are fetched, not 'ftp'"),
        ("http://user:pw@127.0.0.1/", "URLs with credentials (user:password@) are refused"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(")", r"\)")):
        fetch_page(url)


def test_connects_to_the_address_it_checked(web_site: Site) -> None:  # noqa: F811
    """A name the system can't resolve works through the stub: one lookup per connection, checked, then used."""
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"] if len(asked) == 1 else ["10.9.9.9"]  # a rebinding answer on any later lookup

    config = web_site.config(allow_hosts=f"127.0.0.1:{web_site.port}")
    with WebFetcher(config, resolver=resolver) as fetcher:
        page = fetcher.fetch_page(f"http://kb-site.test:{web_site.port}/article")
        assert page.final_url == f"http://kb-site.test:{web_site.port}/article" and page.title
        assert asked == ["kb-site.test"] and web_site.host_headers[-1] == f"kb-site.test:{web_site.port}"
        with pytest.raises(Refused, match=r"kb-site.test \(10.9.9.9\) is refused: private address"):
            fetcher.fetch_page(f"http://kb-site.test:{web_site.port}/guides/pads.html")  # the next connection


def test_rebinding_answer_is_refused(web_site: Site) -> None:  # noqa: F811
    config = web_site.config(allow_hosts=f"127.0.0.1:{web_site.port}")
    with (
        WebFetcher(config, resolver=lambda host, port: ["127.0.0.1", "10.0.0.5"]) as fetcher,
        pytest.raises(Refused, match=r"kb-site.test \(10.0.0.5\) is refused: private address"),
    ):
        fetcher.fetch_page(f"http://kb-site.test:{web_site.port}/article")


def test_names_never_reach_dns_in_these_tests() -> None:
    with pytest.raises(FetchError, match="no DNS in tests"):
        no_dns("example.com", 80)
