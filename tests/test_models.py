"""Building chat models: the split GGUF files are verified on every first use in a process, the `hf:` path
loads a local GGUF file or folder in 4-bit, and the OpenAI-compatible providers reach their (overridable)
endpoints with the right model, key and tools."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kbagent.errors import ConfigError
from tests.conftest import REPO
from tests.small_model import SMALL


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * 2**20):
            digest.update(block)
    return digest.hexdigest()


def _flip_a_byte(path: Path, restore_mtime: bool) -> None:
    """One byte flipped in place: same file, same size, and (if asked) the same modification time."""
    before = path.stat()
    with path.open("r+b") as f:
        f.seek(before.st_size // 2)
        byte = f.read(1)
        f.seek(before.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    if restore_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert (after.st_mtime_ns == before.st_mtime_ns) == restore_mtime


@pytest.mark.slow
@pytest.mark.parametrize("restore_mtime", [True, False], ids=["mtime-restored", "mtime-changed"])
@pytest.mark.parametrize("process", ["same-process", "new-process"])
def test_a_model_file_corrupted_in_place_is_joined_again(
    tmp_path: Path, restore_mtime: bool, process: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = SMALL.ensure(tmp_path)
    assert SMALL.ensure(tmp_path) == path  # verified once; the second use in this process does not hash again
    _flip_a_byte(path, restore_mtime)
    assert _sha256(path) != SMALL.sha256
    if process == "same-process":
        with caplog.at_level(logging.WARNING, logger="agent.embedded_model"):
            assert SMALL.ensure(tmp_path) == path
        assert "doesn't match its published sha256" in caplog.text
    else:  # a later run: nothing remembered from this one
        code = f"from pathlib import Path; from tests.small_model import SMALL; SMALL.ensure(Path({str(tmp_path)!r}))"
        run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert "doesn't match its published sha256" in run.stderr
    assert _sha256(path) == SMALL.sha256


@pytest.mark.slow
def test_a_corrupted_model_file_without_its_parts_is_refused(tmp_path: Path) -> None:
    path = SMALL.ensure(tmp_path)
    _flip_a_byte(path, restore_mtime=True)
    orphan = dataclasses.replace(SMALL, module="kbagent_no_such_part{}")  # the same file, its parts uninstalled
    with pytest.raises(ConfigError, match=r"doesn't match its published sha256.*part 1 is not installed"):
        orphan.ensure(tmp_path)
