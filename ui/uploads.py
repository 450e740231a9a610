"""Uploaded files are copied under `DATA_DIR/uploads/` with safe, unique names that can never leave that folder."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
import uuid
from pathlib import Path

MAX_NAME_CHARS = 120
UNSAFE = re.compile(r"[^\w.\- ()+,=@]+")  # \w is unicode-aware: letters and digits of any script stay
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_name(name: str) -> str:
    """A file name without separators, `..`, control characters or leading dots; NFKC-normalised; never empty."""
    name = unicodedata.normalize("NFKC", str(name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # the last component only, whatever the browser sent
    name = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in name)
    name = UNSAFE.sub("_", name)
    name = re.sub(r"\.{2,}", ".", name)
    name = re.sub(r"\s+", " ", name).strip(" ._")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = suffix[:16]
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip(" ._") or "upload"
    if stem.lower() in RESERVED:
        stem = f"_{stem}"
    return f"{stem}.{suffix}" if suffix else stem


def store_upload(temp_path: str | Path, original_name: str, folder: Path) -> Path:
    """Copy one uploaded file into `folder` under a safe name. The same bytes under the same name reuse the
    stored file (so uploading twice is one source); a name taken by other bytes gets a short unique suffix."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    name = safe_name(original_name)
    target = root / name
    if target.exists() and _same_bytes(target, Path(temp_path)):
        return target
    if target.exists():
        stem, dot, suffix = name.rpartition(".")
        stem, suffix = (stem, f".{suffix}") if dot else (name, "")
        target = root / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"
    if target.parent != root or os.path.commonpath([root, target.resolve()]) != str(root):
        raise ValueError(f"refused upload name {original_name!r}")  # unreachable with safe_name; kept as a guard
    with open(temp_path, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
