"""Servers the tests start on 127.0.0.1: a free port, waiting until one answers, stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(
    url: str,
    proc: subprocess.Popen,  # type: ignore[type-arg]
    log_path: Path,
    what: str,
    up: Callable[[int], bool] = lambda status: status == 200,
) -> None:
    """Until the server `proc` started answers `url` with a status that is `up` (by default 200: an OpenAI-compatible
    server's `/models` listing them); fails with its log's end if it exits or is not up within 180 s (loading a
    GGUF takes a while on two cores)."""
    import httpx

    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if up(httpx.get(url, timeout=1).status_code):
                return
        except httpx.HTTPError:
            if proc.poll() is not None:
                pytest.fail(f"{what} exited: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"{what} did not start within 180 s: {log_path.read_text(errors='replace')[-2000:]}")


def stop_server(proc: subprocess.Popen, wait_s: float) -> None:  # type: ignore[type-arg]
    """Stops a server a test started: asked to end, then killed if it has not within `wait_s`."""
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
