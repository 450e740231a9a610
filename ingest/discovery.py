"""Which files an ingest of paths takes: folders walked in a stable order, hidden files and those the globs leave
out skipped silently, unsupported ones skipped with a reason, each file with its doc type and the folder it was
found in."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders import is_supported
from ingest.report import Outcome


@dataclass
class FileToIngest:
    path: Path
    doc_type: str
    root: Path | None = None  # the folder it was found in (or the file's own folder), for showing it relative


def discover(
    path: Path, globs: list[str], excludes: list[str], doc_type: str | None
) -> tuple[list[FileToIngest], list[Outcome]]:
    """Files to ingest under a path, in a stable order, and one outcome per path that can't be walked."""
    if not path.exists():
        return [], [Outcome(str(path), "failed", "no such file or directory")]
    if path.is_file():
        resolved = path.resolve()
        if not is_supported(resolved):
            return [], [Outcome(str(resolved), "failed", f"unsupported file type {path.suffix or '(none)'!r}")]
        return [FileToIngest(resolved, doc_type or resolved.parent.name, resolved.parent)], []
    root = path.resolve()
    return walk(root, root, globs, excludes, doc_type)


def walk(
    folder: Path, root: Path, globs: list[str], excludes: list[str], doc_type: str | None
) -> tuple[list[FileToIngest], list[Outcome]]:
    """The files under `folder`, which lies in the ingested folder `root` (a watcher walks a subfolder that
    changed): doc types and glob paths are relative to `root`."""
    found: list[FileToIngest] = []
    skipped: list[Outcome] = []
    for here, dirs, files in os.walk(folder, followlinks=False, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            entry = file_in_folder(root, Path(here) / name, globs, excludes, doc_type)
            if isinstance(entry, FileToIngest):
                found.append(entry)
            elif entry is not None:
                skipped.append(entry)
    return found, skipped


def file_in_folder(
    root: Path, file: Path, globs: list[str], excludes: list[str], doc_type: str | None
) -> FileToIngest | Outcome | None:
    """One file found under the folder `root` as a folder ingest takes it: to ingest, skipped (why), or None
    (hidden, or left out by the globs). The doc type is the first folder under `root`, else `root`'s name."""
    rel = file.relative_to(root).as_posix()
    if any(part.startswith(".") for part in Path(rel).parts):
        return None
    if globs and not _matches(rel, file.name, globs):
        return None
    if excludes and _matches(rel, file.name, excludes):
        return None
    if not is_supported(file):
        return Outcome(str(file), "skipped", f"unsupported file type {file.suffix or '(none)'!r}")
    if not file.is_file():  # broken symlink, socket, ...
        return Outcome(str(file), "skipped", "not a regular file")
    parts = Path(rel).parts
    return FileToIngest(file, doc_type or (parts[0] if len(parts) > 1 else root.name), root)


def _matches(rel: str, name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)
