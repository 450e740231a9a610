"""Shared fixtures: real Chroma (embedded and a `chroma run` server), a real PostgreSQL, the real embedding model."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbagent import environment  # first: it sets what the libraries below read at import

environment.prepare()
for key in [k for k in os.environ if k.startswith("KBAGENT_")]:
    del os.environ[key]
# One models folder for the whole run (and its subprocesses): the ONNX export and the joined GGUF are made once.
os.environ["KBAGENT_MODELS_DIR"] = tempfile.mkdtemp(prefix="kbagent-test-models-")
# The joined GGUF is about 1 GB: a run that leaves its folder behind fills /tmp after a few hundred runs.
atexit.register(shutil.rmtree, os.environ["KBAGENT_MODELS_DIR"], ignore_errors=True)

from ingest import IngestConfig, build_ingestor  # noqa: E402
from kbagent.components import open_knowledge_base  # noqa: E402
from kbagent.settings import Settings  # noqa: E402
from knowledge_base import KnowledgeBase  # noqa: E402
from knowledge_base.embeddings import Embedder, build_embedder  # noqa: E402
from tests.support import parts  # noqa: E402
from tests.support.paths import VENV_BIN  # noqa: E402
from tests.support.servers import free_port, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real shipped all-MiniLM-L6-v2 as the default settings build it (onnxruntime), loaded once."""
    settings = Settings(_env_file=None)
    return build_embedder(settings.embedding, settings.store.models_path)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (`chroma run`, shipped by the chromadb package) on 127.0.0.1."""
    chroma = shutil.which("chroma", path=str(VENV_BIN)) or shutil.which("chroma")
    if chroma is None:
        pytest.fail("the `chroma` command from the chromadb package is missing")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = open(path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [chroma, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited: {(path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not start within 60 s")
    yield url
    stop_server(proc, 10)
    log.close()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 (tests/support/pg_server.py); the URL of its `postgres` database."""
    from tests.support.pg_server import postgres_server

    try:
        server = postgres_server(free_port())
        url = server.__enter__().url
    except (RuntimeError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.fail(f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')[-1000:]}")
    yield url
    server.__exit__(None, None, None)


@pytest.fixture
def database_url(postgres: str) -> str:
    """A fresh database on the test server: a knowledge base's records, keyword index, threads and lock."""
    from tests.support.pg_server import new_database

    return new_database(postgres)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", collection=f"t{uuid.uuid4().hex[:12]}", _env_file=None)


@pytest.fixture(params=["embedded", "server", pytest.param("postgres", marks=parts.postgres())])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The same tests against the embedded store, a real Chroma server, and a Chroma server beside a real
    PostgreSQL (records, keyword index, lock)."""
    if request.param == "server":
        return settings.override(chroma_url=request.getfixturevalue("chroma_server"))
    if request.param == "postgres":
        return settings.override(
            chroma_url=request.getfixturevalue("chroma_server"), database_url=request.getfixturevalue("database_url")
        )
    return settings


@pytest.fixture
def kb(store_settings: Settings, embedder: Embedder) -> Iterator[KnowledgeBase]:
    with open_knowledge_base(store_settings, embedder) as kb:
        yield kb


@pytest.fixture
def embedded_kb(settings: Settings, embedder: Embedder) -> Iterator[KnowledgeBase]:
    with open_knowledge_base(settings, embedder) as kb:
        yield kb


@pytest.fixture
def ingestor(kb: KnowledgeBase):  # type: ignore[no-untyped-def]
    return build_ingestor(IngestConfig(), kb)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_part(part, present, how): needs a part this machine may lack")


def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests.support import parts

    parts.check(item)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.support import parts

    line = parts.summary_line()
    if line:
        terminalreporter.write_line(line, yellow=True, bold=True)
