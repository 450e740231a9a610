"""`kbagent models pull` against a stand-in Hugging Face hub on 127.0.0.1 (huggingface_hub honours HF_ENDPOINT):
the file lands in the models folder and is listed, a file that fails its sha256 is refused and deleted, a dropped
transfer resumes where it stopped, and an unreachable hub is one line. The real hub is never contacted."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.catalog import find
from agent.hub import pulled_models
from agent.models import app_model_refusal
from tests.support.paths import REPO
from tests.support.servers import free_port

pytestmark = pytest.mark.slow

# Larger than two of huggingface_hub's 10 MiB read blocks: what it resumes from is what it had written, whole blocks.
CONTENT = b"GGUF" + os.urandom(24 * 2**20)
DROP_AT = 15 * 2**20
COMMIT = "0123456789abcdef0123456789abcdef01234567"
CUSTOM = "someone/Some-GGUF/some-model-q4_k_m.gguf"


@dataclass
class Hub:
    """What the stand-in serves and what it saw: (method, path, Range header) per request."""

    url: str = ""
    published_sha256: str = hashlib.sha256(CONTENT).hexdigest()
    drop_first_get: bool = False
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    bytes_sent: int = 0


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _headers(self, status: int, length: int, extra: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in {
                "X-Repo-Commit": COMMIT,
                "X-Linked-Etag": f'"{hub.published_sha256}"',
                "ETag": f'"{hub.published_sha256}"',
                "X-Linked-Size": str(len(CONTENT)),
                "Accept-Ranges": "bytes",
                "Content-Length": str(length),
                **extra,
            }.items():
                self.send_header(key, value)
            self.end_headers()

        def _known(self) -> bool:
            hub.requests.append((self.command, self.path, self.headers.get("Range")))
            if "/resolve/" in self.path:
                return True
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_HEAD(self) -> None:
            if self._known():
                self._headers(200, len(CONTENT), {})

        def do_GET(self) -> None:
            if not self._known():
                return
            wanted = self.headers.get("Range")
            start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted else 0
            body = CONTENT[start:]
            if start:
                self._headers(206, len(body), {"Content-Range": f"bytes {start}-{len(CONTENT) - 1}/{len(CONTENT)}"})
            else:
                self._headers(200, len(body), {})
            gets = sum(1 for r in hub.requests if r[0] == "GET")
            if hub.drop_first_get and gets == 1:  # part of the file, then the connection drops
                self.wfile.write(body[:DROP_AT])
                hub.bytes_sent += DROP_AT
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)
            hub.bytes_sent += len(body)

    return Handler


@pytest.fixture
def hub() -> Iterator[Hub]:
    state = Hub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()


def kbagent(tmp_path: Path, endpoint: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return python(tmp_path, endpoint, "-m", "kbagent.cli", *args, **env)


def python(tmp_path: Path, endpoint: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environ.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        KBAGENT_DATA_DIR=str(tmp_path / "data"),
        KBAGENT_MODELS_DIR=str(tmp_path / "models"),
        OLLAMA_HOST=f"127.0.0.1:{free_port()}",
        **env,
    )
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=REPO, env=environ)


def _ggufs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "models").rglob("*.gguf"))


def test_a_pull_lands_the_file_prints_its_model_line_and_is_listed(tmp_path: Path, hub: Hub) -> None:
    entry = find("qwen2.5-1.5b")
    assert entry is not None
    result = kbagent(tmp_path, hub.url, "models", "pull", "qwen2.5-1.5b")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "models" / entry.filename
    assert path.read_bytes() == CONTENT
    assert f"KBAGENT_MODEL=gguf:{path}" in result.stdout.splitlines()
    assert any(r[1] == f"/{entry.repo}/resolve/main/{entry.filename}" for r in hub.requests)
    listed = json.loads(kbagent(tmp_path, hub.url, "models", "--json").stdout)
    assert {"spec": f"gguf:{path}", "usable": True, "reason": "0.02 GB, in the models folder"} in listed


def test_a_file_that_fails_its_checksum_is_refused_and_deleted(tmp_path: Path, hub: Hub) -> None:
    hub.published_sha256 = hashlib.sha256(b"another file").hexdigest()
    result = kbagent(tmp_path, hub.url, "models", "pull", CUSTOM)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "checksum mismatch" in result.stderr, result.stderr
    assert _ggufs(tmp_path) == []
    assert "KBAGENT_MODEL" not in result.stdout


def test_a_pulled_file_is_not_hashed_again_by_the_next_pull_until_it_changes(tmp_path: Path, hub: Hub) -> None:
    assert kbagent(tmp_path, hub.url, "models", "pull", CUSTOM).returncode == 0
    path = _ggufs(tmp_path)[0]
    code = (
        "from pathlib import Path; from agent import embedded_model as m, hub\n"
        "hashed = []; real = m.sha256_of\n"
        "m.sha256_of = hub.sha256_of = lambda p: hashed.append(p) or real(p)\n"
        f"print(hub.pull({CUSTOM!r}, Path({str(tmp_path / 'models')!r})).path, len(hashed))"
    )
    again = python(tmp_path, hub.url, "-c", code)
    assert again.stdout.split() == [str(path), "0"], again.stderr  # the pull's own check, remembered
    os.utime(path)  # the same bytes, another identity: hashed again, not downloaded again
    again = python(tmp_path, hub.url, "-c", code)
    assert again.stdout.split() == [str(path), "1"], again.stderr
    assert hub.bytes_sent == len(CONTENT)  # downloaded once


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path: Path, hub: Hub) -> None:
    hub.drop_first_get = True
    result = kbagent(tmp_path, hub.url, "models", "pull", CUSTOM)
    assert result.returncode == 0, result.stderr
    assert _ggufs(tmp_path)[0].read_bytes() == CONTENT
    ranges = [r[2] for r in hub.requests if r[0] == "GET"]
    assert len(ranges) == 2 and ranges[0] is None, ranges
    assert ranges[1] is not None, "the second request started over"
    resumed_from = int(ranges[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from <= DROP_AT
    assert hub.bytes_sent == DROP_AT + len(CONTENT) - resumed_from  # only the rest was sent again


def test_a_file_the_hub_publishes_no_checksum_for_is_kept_where_the_app_loads_no_model(
    tmp_path: Path, hub: Hub
) -> None:
    """Unchecked, it is not in the models folder as the app sees it (no app user may load it, `kbagent models`
    does not list it); given a sha256 from elsewhere, the same pull checks it and moves it in, not downloading it
    again."""
    hub.published_sha256 = "not-a-sha256"
    result = kbagent(tmp_path, hub.url, "models", "pull", CUSTOM)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no sha256" in lines[0] and "--sha256" in lines[0], result.stderr
    models = tmp_path / "models"
    files = [p for p in models.rglob("*") if p.is_file()]
    assert [p for p in files if p.read_bytes() == CONTENT], files  # kept aside, not lost
    assert all(app_model_refusal(f"gguf:{p}", [], models) for p in files), files
    assert pulled_models(models) == []  # what `kbagent models` lists

    wrong = kbagent(tmp_path, hub.url, "models", "pull", CUSTOM, "--sha256", hashlib.sha256(b"other").hexdigest())
    assert wrong.returncode == 1 and "checksum mismatch" in wrong.stderr, wrong.stderr
    assert not [p for p in models.rglob("*") if p.is_file() and p.read_bytes() == CONTENT]  # deleted

    sha = hashlib.sha256(CONTENT).hexdigest()
    right = kbagent(tmp_path, hub.url, "models", "pull", CUSTOM, "--sha256", sha)
    assert right.returncode == 0, right.stderr
    path = models / CUSTOM.rsplit("/", 1)[1]
    assert path.read_bytes() == CONTENT and f"KBAGENT_MODEL=gguf:{path}" in right.stdout.splitlines()
    assert app_model_refusal(f"gguf:{path}", [], models) is None
    assert sum(1 for r in hub.requests if r[0] == "GET") == 2  # the first pull's and the one after the deletion


@pytest.mark.parametrize("why", ["no-server", "offline-mode"])
def test_no_hub_is_one_clear_line_and_exit_1(tmp_path: Path, why: str) -> None:
    env = {"HF_HUB_OFFLINE": "1"} if why == "offline-mode" else {}
    result = kbagent(tmp_path, f"http://127.0.0.1:{free_port()}", "models", "pull", CUSTOM, **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kbagent: error: "), result.stderr
    assert ("can't reach" if why == "no-server" else "HF_HUB_OFFLINE") in lines[0]
    assert _ggufs(tmp_path) == []
