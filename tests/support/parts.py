"""Tests that need a part this machine may lack (a browser, llama.cpp, a database server).

Where the part is missing they are skipped, and the run ends with one line naming every part it could not
test and how to get it; in CI (`CI` set) a missing part fails them instead, so a green CI run tested everything.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

INSTALL = "bash scripts/install.sh --test (as root: it installs the Debian packages too)"
MISSING: dict[str, str] = {}  # part → how to get it, for the parts the collected tests needed


def requires(part: str, present: bool, how: str = INSTALL) -> pytest.MarkDecorator:
    """Mark tests that need `part`; `present` says whether this machine has it."""
    if not present:
        MISSING[part] = how
    return pytest.mark.requires_part(part=part, present=present, how=how)


def chromium() -> pytest.MarkDecorator:
    from ingest.web.browser import find_chromium

    return requires("Chromium", find_chromium() is not None)


def llama_cpp() -> pytest.MarkDecorator:
    return requires("llama.cpp (llama-cpp-python)", importlib.util.find_spec("llama_cpp") is not None)


def postgres() -> pytest.MarkDecorator:
    from tests.support.pg_server import pg_bin

    return requires("PostgreSQL", pg_bin() is not None)


def ocr_engine(name: str) -> pytest.MarkDecorator:
    """An OCR engine (`tesseract`, `rapidocr`) and the DejaVu fonts the test pages are drawn with."""
    from ingest.text.ocr import missing
    from tests.support.scans import font_path

    problem = missing(name)
    return requires(f"OCR ({name})", problem is None and font_path().exists(), problem or INSTALL)


def check(item: pytest.Item) -> None:
    """Before a test runs: skip it (or fail it in CI) when a part it needs is missing."""
    for mark in item.iter_markers("requires_part"):
        if not mark.kwargs["present"]:
            message = f"{mark.kwargs['part']} is missing: {mark.kwargs['how']}"
            if os.environ.get("CI"):
                pytest.fail(f"CI must test everything; {message}", pytrace=False)
            pytest.skip(message)


def summary_line() -> str | None:
    if not MISSING:
        return None
    parts = ", ".join(sorted(MISSING))
    hows = "; ".join(sorted(set(MISSING.values())))
    return f"not tested here, missing: {parts} (get them with: {hows})"
