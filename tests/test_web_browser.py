"""JavaScript pages in the real Chromium, with every browser request (redirect hops too) through the guard."""

from __future__ import annotations

import os
import select
import socket
import time

import pytest

from ingest.web import FetchConfig, FetchError, WebFetcher
from ingest.web.browser import find_chromium
from tests.web_site import Pages, Site, no_dns, serve_pages, web_site  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_chromium() is None and not os.environ.get("CI"), reason="no Chromium: bash scripts/install.sh --test"
    ),
]


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


# ---- what leaves the browser besides the page's own HTTP requests -------------------------------------------

LIVE_SUPPORT = """<!doctype html><html><head><meta charset="utf-8"><title>Live support</title></head><body>
<main><h1>Live support</h1>
<p>Volunteers answer questions about repairs in the chat on weekday evenings; outside those hours, leave a
message and someone from the workshop team replies the next morning.</p></main>
<script>
let state = "probe ran";
try {
  const pc = new RTCPeerConnection({iceServers: [
    {urls: "stun:127.0.0.1:STUN_PORT"},
    {urls: "turn:127.0.0.1:STUN_PORT?transport=udp", username: "kb", credential: "kb"},
    {urls: "turn:127.0.0.1:TURN_PORT?transport=tcp", username: "kb", credential: "kb"}]});
  pc.createDataChannel("probe");
  pc.createOffer().then(offer => pc.setLocalDescription(offer));
  window.probe = pc;
} catch (error) {
  state = "probe ran without WebRTC";
}
document.querySelector("main").insertAdjacentHTML("beforeend",
  "<p>The chat window opens in the corner of this page once a volunteer is online (" + state + ").</p>");
</script>
<script src="/slow.js"></script></body></html>"""


def fetch_config(*allowed: Pages) -> FetchConfig:
    allow = ",".join(f"127.0.0.1:{site.port}" for site in allowed)
    return FetchConfig.model_validate({"allow_hosts": allow, "timeout_s": 10.0, "max_mb": 1.0, "crawl_delay_s": 0.0})


def test_webrtc_sends_no_udp_around_the_proxy() -> None:
    """A page's STUN/TURN servers on 127.0.0.1 (an IP literal: no resolver rule stops it) hear nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stun, socket.create_server(("127.0.0.1", 0)) as turn:
        stun.bind(("127.0.0.1", 0))
        page_html = LIVE_SUPPORT.replace("STUN_PORT", str(stun.getsockname()[1]))
        page_html = page_html.replace("TURN_PORT", str(turn.getsockname()[1]))
        site_pages = serve_pages({"/": page_html, "/slow.js": "window.loaded = true;"})
        with site_pages as site, WebFetcher(fetch_config(site), resolver=no_dns) as fetcher:
            page = fetcher.fetch_page(site.url + "/", render=True)  # the page stays open while ICE gathers
            time.sleep(2)
        ready, _, _ = select.select([stun, turn], [], [], 0)
        heard = ["UDP datagram" if sock is stun else "TCP connection" for sock in ready]
    assert page.rendered and "(probe ran)" in page.markdown and "/slow.js" in site.hits
    assert heard == []  # no STUN/TURN datagram, no TURN-over-TCP connection that went around the proxy
