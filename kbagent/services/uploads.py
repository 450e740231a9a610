"""Uploaded files are copied under `DATA_DIR/uploads/` with safe, unique names that can never leave that folder,
and one copy of any bytes: the same document uploaded again, under any name, is the file already there."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
import uuid
from dataclasses import dataclass
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


@dataclass(frozen=True)
class StoredUpload:
    """One upload in the uploads folder. `created`: this upload wrote `path`; otherwise `path` already held the
    same bytes, under the same name or another (`name` is the one the browser sent)."""

    name: str
    path: Path
    created: bool

    @property
    def renamed(self) -> bool:
        """Whether the same bytes were already stored under another name (so this upload is that source)."""
        return not self.created and self.path.name != safe_name(self.name)


def store_upload(temp_path: str | Path, original_name: str, folder: Path) -> StoredUpload:
    """Copy one uploaded file into `folder` under a safe name. Bytes already stored there, under any name, reuse
    that file (so uploading a document twice, even renamed, is one source); a name taken by other bytes gets a
    short unique suffix."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    name = safe_name(original_name)
    twin = _stored_twin(root, Path(temp_path), root / name)
    if twin is not None:
        return StoredUpload(original_name, twin, created=False)
    target = root / name
    if target.exists():
        stem, dot, suffix = name.rpartition(".")
        stem, suffix = (stem, f".{suffix}") if dot else (name, "")
        target = root / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"
    if target.parent != root or os.path.commonpath([root, target.resolve()]) != str(root):
        raise ValueError(f"refused upload name {original_name!r}")  # unreachable with safe_name; kept as a guard
    with open(temp_path, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst)
    return StoredUpload(original_name, target, created=True)


def _stored_twin(root: Path, upload: Path, preferred: Path) -> Path | None:
    """The file in `root` with the bytes of `upload` (`preferred`, its own name, first), if any. Only files of
    the same size are hashed."""
    size = upload.stat().st_size
    same_size = [p for p in root.iterdir() if p.is_file() and not p.is_symlink() and p.stat().st_size == size]
    if not same_size:
        return None
    digest = _digest(upload)
    same_size.sort(key=lambda p: (p != preferred, p.name))
    return next((p for p in same_size if _digest(p) == digest), None)


def _digest(path: Path) -> bytes:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()
