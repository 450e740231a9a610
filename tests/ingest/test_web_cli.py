"""`kbagent ingest URL` end to end, as a user runs it (real subprocess, real model, the local test site)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import kbagent
from tests.support.web_site import Site, web_site  # noqa: F401

pytestmark = pytest.mark.slow


def test_ingest_url_then_unchanged_then_mixed_with_files(tmp_path: Path, web_site: Site) -> None:  # noqa: F811
    data = tmp_path / "data"
    env = {"KBAGENT_ALLOW_HOSTS": web_site.allow, "KBAGENT_CRAWL_DELAY_S": "0"}
    article = web_site.url + "/article"

    first = kbagent("ingest", article, data=data, env=env)
    assert first.returncode == 0, first.stderr
    assert "1 added, 0 updated, 0 unchanged, 0 failed" in " ".join(first.stdout.split())

    again = kbagent("ingest", article, "--json", data=data, env=env)
    summary = json.loads(again.stdout)
    assert summary["unchanged"] == 1 and summary["embedded_chunks"] == 0 and again.returncode == 0

    note = tmp_path / "kb" / "note.md"
    note.parent.mkdir()
    note.write_text("# Saddle height\n\nSet the saddle so the knee is slightly bent at the bottom of the stroke.\n")
    mixed = kbagent("ingest", str(note), article, web_site.url + "/missing", data=data, env=env)
    out = " ".join(mixed.stdout.split())
    assert mixed.returncode == 0, mixed.stderr
    assert "1 added, 0 updated, 1 unchanged, 1 failed" in out
    assert f"failed {web_site.url}/missing: HTTP 404 Not Found" in out

    found = json.loads(kbagent("search", "barrel adjuster pad gap", "--json", "-k", "1", data=data).stdout)
    assert found[0]["source"] == web_site.url + "/guides/brakes" and found[0]["title"] == "Adjusting rim brakes"

    refused = kbagent("ingest", article, "--strict", data=data)  # no KBAGENT_ALLOW_HOSTS: the guard says no
    assert refused.returncode == 1
    assert f"failed {article}: 127.0.0.1 is refused: loopback address" in " ".join(refused.stdout.split())

    nothing = kbagent("ingest", data=data)
    assert nothing.returncode == 2 and "nothing to ingest" in nothing.stderr
