"""The app as a user starts it, for the browser measurements and the README's screenshots: the real embedded
model, the real embeddings, the sample knowledge base (samples/harborview) ingested into a fresh data folder.

Only the models folder is shared with the user's (KBAGENT_MODELS_DIR, else the configured one), so the 1 GB model
file is joined once, not per run.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "harborview"
sys.path.insert(0, str(REPO))
os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", GRADIO_ANALYTICS_ENABLED="False")
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def real_app() -> Iterator[tuple[str, Any]]:
    """The app on a free loopback port with the embedded model (warming up in the background, as `kbagent serve`
    starts it) until the block ends: (url, parts)."""
    import app as web_app
    from agent.models import available_models
    from kbagent.components import Components
    from kbagent.services.operations import Services
    from kbagent.settings import load_settings

    base = load_settings()
    with tempfile.TemporaryDirectory(prefix="kbagent-ui-") as tmp:
        settings = base.override(
            data_dir=str(Path(tmp) / "data"),
            models_dir=str(base.store.models_path.resolve()),
            host="127.0.0.1",
            port=free_port(),
            model="embedded",
        )
        with Components(settings) as parts:
            parts.ingest([SAMPLES])
            svc = Services(parts, available_models(settings.keys))
            demo = web_app.build_app(parts, warm=True, svc=svc)
            served = web_app.ways_in(svc, settings, f"http://{settings.app.host}:{settings.app.port}")  # the viewer
            _, url, _ = web_app.launch(demo, settings, served, prevent_thread_lock=True, quiet=True)
            try:
                yield url.rstrip("/"), parts
            finally:
                demo.close()


@contextmanager
def chromium(width: int = 1440, height: int = 900) -> Iterator[Any]:
    """A page in Debian's Chromium that can reach loopback only."""
    from playwright.sync_api import sync_playwright

    from ingest.web.browser import FLAGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(180_000)
        try:
            yield page
        finally:
            browser.close()
