"""JavaScript pages in the real Chromium, with every browser request (redirect hops too) through the guard."""

from __future__ import annotations

import re
import selectors
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.web import FetchConfig, FetchError, Page, WebFetcher
from ingest.web.browser import FLAGS
from tests.support import parts
from tests.support.web_site import Pages, Site, no_dns, serve_pages, web_site  # noqa: F401

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
        with selectors.DefaultSelector() as waiting:  # not select.select: it refuses descriptors past 1023
            waiting.register(stun, selectors.EVENT_READ)
            waiting.register(turn, selectors.EVENT_READ)
            ready = [key.fileobj for key, _ in waiting.select(timeout=0)]
        heard = ["UDP datagram" if sock is stun else "TCP connection" for sock in ready]
    assert page.rendered and "(probe ran)" in page.markdown and "/slow.js" in site.hits
    assert heard == []  # no STUN/TURN datagram, no TURN-over-TCP connection that went around the proxy


class RecordingResolver:
    """Maps a few test names to 127.0.0.1 and records every lookup; any other name is refused, never resolved."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host in self.names:
            return ["127.0.0.1"]
        raise FetchError(f"no DNS in tests ({host})")


SITE_HOST, ASSET_HOST, MOVED_HOST = "www.harbor-test.example", "cdn.harbor-assets.example", "static.harbor.example"
ASSET_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Tool library</title>
<link rel="stylesheet" href="http://ASSETS/site.css"></head><body><main><h1>Tool library</h1><div id="list"></div>
</main><script src="http://ASSETS/old/list.js"></script></body></html>"""
ASSET_SCRIPT = """document.getElementById("list").innerHTML = "<p>Members borrow torque wrenches, chain whips " +
  "and wheel-truing stands for a week at a time; return them cleaned to the workshop counter.</p>";"""


@dataclass
class Rendered:
    page: Page
    lookups: list[str]
    unrequested: list[str]
    asset_hits: list[str]


@pytest.fixture(scope="module")
def rendered_with_assets() -> Rendered:
    """One page with a stylesheet from a second host and a script redirected from there to a third, rendered;
    lookups recorded until 4 s later."""
    redirects: dict[str, str] = {}
    with serve_pages({"/site.css": "h1 { color: teal; }", "/list.js": ASSET_SCRIPT}, redirects) as assets:
        redirects["/old/list.js"] = f"http://{MOVED_HOST}:{assets.port}/list.js"
        html = ASSET_PAGE.replace("ASSETS", f"{ASSET_HOST}:{assets.port}")
        with serve_pages({"/": html}) as site:
            resolver = RecordingResolver(SITE_HOST, ASSET_HOST, MOVED_HOST)
            with WebFetcher(fetch_config(site, assets), resolver=resolver) as fetcher:
                page = fetcher.fetch_page(f"http://{SITE_HOST}:{site.port}/", render=True)
                time.sleep(4)
                assert fetcher.browser.proxy is not None
                unrequested = list(fetcher.browser.proxy.unrequested)
                lookups = list(resolver.lookups)
    return Rendered(page, lookups, unrequested, list(assets.hits))


def test_only_the_page_and_its_subresources_hosts_are_looked_up(rendered_with_assets: Rendered) -> None:
    rendered = rendered_with_assets
    assert rendered.page.rendered and "torque wrenches" in rendered.page.markdown  # list.js ran, after its redirect
    assert {"/old/list.js", "/list.js", "/site.css"} <= set(rendered.asset_hits)
    assert set(rendered.lookups) == {SITE_HOST, ASSET_HOST, MOVED_HOST}  # Chromium's own hosts never reach it


def test_chromium_calls_no_update_or_model_service_of_its_own(rendered_with_assets: Rendered) -> None:
    """Turned off at the source: the proxy is not even asked, except for the Gaia account list that no switch of
    this Chromium stops (the proxy refuses it: no page asked for it)."""
    assert set(rendered_with_assets.unrequested) <= {"accounts.google.com"}


def test_our_disabled_features_keep_playwrights_own() -> None:
    """Chromium keeps only the last --disable-features, ours: it must still hold every feature Playwright turns off
    (HttpsUpgrades, OptimizationHints, ...), or a Playwright upgrade would quietly turn them back on."""
    import playwright

    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    sources = [path.read_text(encoding="utf-8", errors="replace") for path in lib.rglob("*.js")]
    found = [match for text in sources for match in re.findall(r"disabledFeatures = \[(.*?)\]", text, re.S)]
    assert found, f"Playwright's disabledFeatures list not found under {lib}"
    theirs = {name for text in found for name in re.findall(r'^\s*"(\w+)"', text, re.M)}
    ours = [flag.split("=", 1)[1].split(",") for flag in FLAGS if flag.startswith("--disable-features=")]
    assert "HttpsUpgrades" in theirs and len(ours) == 1
    assert theirs - set(ours[0]) == set()
