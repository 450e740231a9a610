"""JavaScript pages in the real Chromium, with every browser request (redirect hops too) through the guard."""

from __future__ import annotations

import pytest

from ingest.web import FetchError
from tests import parts
from tests.web_site import Site, web_site  # noqa: F401

pytestmark = [pytest.mark.slow, parts.chromium()]


def test_javascript_page_is_rendered_and_its_requests_are_guarded(web_site: Site) -> None:  # noqa: F811
    before = len(web_site.private_hits)
    with web_site.fetcher() as fetcher:
        page = fetcher.fetch_page(web_site.url + "/js")  # detected: empty #root, <noscript>, scripts
        assert page.rendered and page.title == "Opening hours"
        assert "The workshop opens at 9 o'clock on weekdays" in page.markdown  # (7 + 2): only a script knows
        assert "enable JavaScript" not in page.markdown
        proxy = fetcher.browser.proxy
        assert proxy is not None
        refused = " ".join(proxy.refused)
        assert f"{web_site.private_url}/from-browser" in refused  # the page's own request to 127.0.0.2
        assert f"{web_site.private_url}/via-redirect" in refused  # a redirect hop the browser followed
        assert "leaked" not in page.title

        again = fetcher.fetch_page(web_site.url + "/js")  # the same browser, reused
        assert again.rendered and again.markdown == page.markdown
        forced = fetcher.fetch_page(web_site.url + "/article", render=True)
        assert forced.rendered and "| Brake pads | 12 EUR |" in forced.markdown
        with pytest.raises(FetchError, match="no text found"):
            fetcher.fetch_page(web_site.url + "/empty-spa")
    assert len(web_site.private_hits) == before
    assert "/redirect/private" in web_site.hits


def test_without_rendering_the_javascript_page_has_no_text(web_site: Site) -> None:  # noqa: F811
    with web_site.fetcher() as fetcher:
        page = fetcher.fetch_page(web_site.url + "/js", render=False)
    assert not page.rendered and "9 o'clock" not in page.markdown


def test_missing_browser_is_one_clear_line(web_site: Site) -> None:  # noqa: F811
    with web_site.fetcher(browser_path="/nonexistent/chromium") as fetcher:
        with pytest.raises(FetchError, match="no Chromium was found"):
            fetcher.fetch_page(web_site.url + "/js", render=True)
        with pytest.raises(FetchError, match="no Chromium was found"):  # remembered, not relaunched
            fetcher.fetch_page(web_site.url + "/article", render=True)
