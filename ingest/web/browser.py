"""One headless Chromium, driven by Playwright, reused across pages, with all its traffic through the guard.

Playwright's sync API belongs to the thread that started it, so the browser lives on its own worker thread and
any thread may ask it to render. Chromium resolves no names itself (every host maps to NOTFOUND) and sends every
request, loopback included, to the guarding proxy, which serves only hosts the page asked for. Chromium's own
background services are switched off where a switch exists. The system Chromium is started as its binary, not
Debian's wrapper script, which would add API keys and extension flags that make it call Google at start-up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ingest.web.config import FetchConfig
from ingest.web.errors import FetchError
from ingest.web.guard import Guard
from ingest.web.proxy import GuardingProxy, PageHosts

if TYPE_CHECKING:
    from playwright.sync_api import Browser as Chromium
    from playwright.sync_api import Playwright, Route

SYSTEM_CHROMIUM = (
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)
PLAYWRIGHT_DISABLED_FEATURES = [  # Playwright's own list (1.65): a later --disable-features replaces, not extends, it
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
]
QUIET_FEATURES = [  # services that fetch from Google hosts on their own
    "OptimizationTargetPrediction",
    "DialMediaRouteProvider",
    "Translate",
    "AutofillServerCommunication",
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-field-trial-config",
    "--metrics-recording-only",
    "--disable-sync",
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    "--disable-breakpad",
    "--allow-browser-signin=false",
    "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES + QUIET_FEATURES),
    # The on-device AI model manifest is fetched from update.googleapis.com even with --disable-component-update;
    # an override (here an empty one) makes Chromium read it from disk instead.
    "--optimization-guide-manifest-override=/dev/null",
    # WebRTC may use only proxied TCP: STUN/TURN over UDP would reach any IP literal without passing the guard.
    # (The older --force-webrtc-ip-handling-policy switch no longer exists; this one sets the profile's policy.)
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]
SKIPPED_RESOURCES = {"image", "media", "font"}
SETTLE_MS = 3000


def find_chromium(configured: str = "", playwright_own: str = "") -> str | None:
    """The configured path, else Playwright's own Chromium if installed, else the system one."""
    if configured:
        return configured if os.path.exists(configured) else None
    if playwright_own and os.path.exists(playwright_own):
        return playwright_own
    return next((p for p in SYSTEM_CHROMIUM if os.path.exists(p)), shutil.which("chromium"))


class Browser:
    """Renders pages in one lazily launched Chromium; `close()` stops it and its proxy."""

    def __init__(self, config: FetchConfig, guard: Guard) -> None:
        self.config = config
        self.guard = guard
        self.proxy: GuardingProxy | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kbagent-browser")
        self._playwright: Playwright | None = None
        self._browser: Chromium | None = None

    def render(self, url: str) -> tuple[str, str]:
        """(final URL, HTML after scripts ran) of a page the static fetch already accepted."""
        return self._worker.submit(self._render, url).result()

    def close(self) -> None:
        self._worker.submit(self._stop).result()
        self._worker.shutdown()

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            own = self._playwright.chromium.executable_path
        except Exception:  # Playwright's browsers were never installed
            own = ""
        path = find_chromium(self.config.browser_path, own)
        if path is None:
            self._stop()
            raise FetchError(
                "page needs JavaScript but no Chromium was found: install Debian's chromium or set KBAGENT_BROWSER_PATH"
            )
        self.proxy = GuardingProxy(self.guard, self.config)
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=path,
                headless=True,
                args=[*FLAGS, f"--proxy-server={self.proxy.url}", "--proxy-bypass-list=<-loopback>"],
                timeout=self.config.timeout_s * 1000,
            )
        except Exception as exc:
            self._stop()
            raise FetchError(f"cannot start Chromium at {path}: {str(exc).splitlines()[0]}") from exc

    def _render(self, url: str) -> tuple[str, str]:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        if self._browser is None:
            self._start()
        assert self._browser is not None and self.proxy is not None
        hosts = self.proxy.pages
        hosts.open(url)
        context = self._browser.new_context(
            user_agent=self.config.user_agent, service_workers="block", accept_downloads=False
        )
        try:
            context.route("**/*", lambda route: _record_or_skip(route, hosts))
            context.on("request", lambda request: hosts.add(request.url))  # redirect hops, which routing never sees
            page = context.new_page()
            page.on("websocket", lambda socket: hosts.add(socket.url))
            response = page.goto(url, wait_until="load", timeout=self.config.timeout_s * 1000)
            if response is not None and response.status >= 400:
                raise FetchError(f"HTTP {response.status} {response.status_text} (browser): {url}")
            with contextlib.suppress(PlaywrightTimeout):  # pages that poll forever: take what has rendered
                page.wait_for_load_state("networkidle", timeout=SETTLE_MS)
            return page.url, page.content()
        except PlaywrightTimeout:
            raise FetchError(f"timed out after {self.config.timeout_s:g} s rendering {url}") from None
        except PlaywrightError as exc:
            raise FetchError(f"browser could not render {url}: {str(exc).splitlines()[0]}") from None
        finally:
            context.close()
            hosts.close()

    def _stop(self) -> None:
        with contextlib.suppress(Exception):
            if self._browser is not None:
                self._browser.close()
        with contextlib.suppress(Exception):
            if self._playwright is not None:
                self._playwright.stop()
        self._browser = self._playwright = None
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None


def _record_or_skip(route: Route, hosts: PageHosts) -> None:
    """Lets the proxy serve the request's host before it is sent. Images, media and fonts add nothing to the
    text; skipping them makes rendering faster."""
    if route.request.resource_type in SKIPPED_RESOURCES:
        route.abort()
    else:
        hosts.add(route.request.url)
        route.continue_()
