"""A split GGUF's sha256 is checked once for each identity the joined file has, and remembered beside it: a new
process takes the memo instead of hashing a gigabyte again, while a touched, replaced or corrupted file is hashed
again (and a corrupted one refused). A small file made of two parts stands in for the model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import embedded_model
from agent.embedded_model import MEMO, SplitGGUF, matches
from kbagent.errors import ConfigError
from tests.support.files import flip_a_byte
from tests.support.paths import REPO

PART = 3 * 2**20 + 17  # over one read block's worth of parts, not a multiple of it


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SplitGGUF:
    """A two-part "model" whose part modules live in tmp_path (importable here and in a child process)."""
    prefix = f"kbagent_test_part_{uuid.uuid4().hex[:8]}_"
    parts = tmp_path / "parts"
    parts.mkdir()
    content = b""
    for n in (1, 2):
        piece = os.urandom(PART)
        content += piece
        (parts / f"part{n}.bin").write_bytes(piece)
        (parts / f"{prefix}{n}.py").write_text(f"def get_part_path():\n    return {str(parts / f'part{n}.bin')!r}\n")
    monkeypatch.syspath_prepend(str(parts))
    monkeypatch.setattr(embedded_model, "_VERIFIED", {})
    sha = hashlib.sha256(content).hexdigest()
    return SplitGGUF("test.gguf", sha, len(content), prefix + "{}", 2, "nothing to install")


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files hashed (outside joining), in order."""
    hashed: list[Path] = []
    real: Callable[[Path], str] = embedded_model.sha256_of

    def counted(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(embedded_model, "sha256_of", counted)
    return hashed


def _forget_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_model, "_VERIFIED", {})


def _flip_a_byte_keeping_mtime(path: Path) -> None:
    before = path.stat()
    flip_a_byte(path, restore_mtime=True)
    assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_a_new_process_takes_the_memo_instead_of_hashing_again(
    model: SplitGGUF, tmp_path: Path, hashes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    path = model.ensure(models)  # joined (and hashed while joining)
    memo = json.loads((models / MEMO).read_text())
    assert memo[model.name]["sha256"] == model.sha256
    _forget_this_process(monkeypatch)
    assert model.ensure(models) == path
    assert hashes == []
    code = (
        "import sys; from pathlib import Path; from agent import embedded_model as m; from agent.embedded_model "
        "import SplitGGUF\n"
        "hashed = []; real = m.sha256_of\n"
        "m.sha256_of = lambda p: hashed.append(p) or real(p)\n"
        f"model = SplitGGUF({model.name!r}, {model.sha256!r}, {model.size}, {model.module!r}, 2, '')\n"
        f"assert model.ensure(Path({str(models)!r})) == Path({str(path)!r})\n"
        "print(len(hashed))"
    )
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "parts"), str(REPO)])}
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0"


def _touch(path: Path) -> None:
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))


def _replace_with_a_copy(path: Path) -> None:
    copy = path.with_name("copy")
    copy.write_bytes(path.read_bytes())
    copy.replace(path)


def _chmod(path: Path) -> None:  # the ctime alone changes
    path.chmod(0o600)


@pytest.mark.parametrize("change", [_touch, _replace_with_a_copy, _chmod], ids=["touched", "replaced", "chmod"])
def test_a_file_whose_identity_changed_is_hashed_again(
    model: SplitGGUF,
    tmp_path: Path,
    hashes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Path], None],
) -> None:
    models = tmp_path / "models"
    path = model.ensure(models)
    change(path)
    _forget_this_process(monkeypatch)
    assert model.ensure(models) == path
    assert hashes == [path]
    _forget_this_process(monkeypatch)  # the new identity is remembered in its turn
    assert model.ensure(models) == path
    assert hashes == [path]


def test_a_memo_for_another_sha256_or_unreadable_is_not_taken(
    model: SplitGGUF, tmp_path: Path, hashes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    path = model.ensure(models)
    _forget_this_process(monkeypatch)
    other = "0" * 64
    assert not matches(path, other)  # the memo vouches for one sha256 only
    assert hashes == [path]
    (models / MEMO).write_text("{not json")
    _forget_this_process(monkeypatch)
    assert model.ensure(models) == path
    assert hashes == [path, path]


def test_a_file_corrupted_in_place_is_refused_though_the_memo_knew_it(
    model: SplitGGUF,
    tmp_path: Path,
    hashes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    models = tmp_path / "models"
    path = model.ensure(models)
    _flip_a_byte_keeping_mtime(path)
    _forget_this_process(monkeypatch)
    assert not matches(path, model.sha256, model.size)
    orphan = dataclasses.replace(model, module="kbagent_no_such_part{}")  # the same file, its parts uninstalled
    with pytest.raises(ConfigError, match=r"doesn't match its published sha256.*part 1 is not installed"):
        orphan.ensure(models)
    with caplog.at_level(logging.WARNING, logger="agent.embedded_model"):
        assert model.ensure(models) == path  # joined again from the parts
    assert "doesn't match its published sha256" in caplog.text
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256
