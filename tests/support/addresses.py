"""A cited passage's address followed as a reader would: through the app's knowledge bases to the viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.read import ReadSettings
from ingest.workers import InProcess
from kbagent.components import Components
from kbagent.settings import Settings
from viewer.address import parse_address
from viewer.locate import passage_body
from viewer.service import View


def check_address(address: str, public_url: str, data: Path, cited: dict[str, Any]) -> View:
    """Asserts that `address` (from an answer outside the app) is under `public_url` and opens, in the data dir
    `data`, the passage `cited` (the answer's data for it: source, source_id, chunk_id, and its text where the
    answer gives it) at its place."""
    assert address.startswith(public_url.rstrip("/") + "/source/"), address
    parsed = parse_address(address[len(public_url.rstrip("/")) :])  # a public URL may have a path of its own
    assert parsed is not None, address
    assert (parsed.source_id, parsed.chunk_id) == (cited["source_id"], cited["chunk_id"])
    with Components(Settings(data_dir=data, _env_file=None)) as parts:
        view = parts.viewer(InProcess(ReadSettings()), kb=parsed.knowledge_base).view(parsed.source_id, parsed.chunk_id)
    assert view.status == "ok" and view.source == cited["source"], (view.status, view.note)
    assert view.found
    if "text" in cited:
        assert view.passage == passage_body(cited["text"])[1]
    return view
