"""Folders kept in sync with the knowledge base while a process runs (`kbagent watch`, the app's watched folders).

watchfiles (the OS's file events, debounced) hands over batches of changed paths; each batch becomes one
`Ingestor.update` under the ingest lock: changed files read again (an unchanged one costs a hash), deleted ones
removed, and a deleted file whose bytes reappear under a new path moved with its vectors (no re-embedding).
Each folder is synced in full first, so what changed while nothing watched is caught too; a sync killed halfway
is finished by the next one, since every step is the ingest's own crash-safe write or removal.
A file that failed is not read again on every event: not until its bytes change (size or time), or, where the
failure may pass (a timeout on a busy machine, a worker that died), not before RETRY_AFTER_S.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.discovery import FileToIngest, file_in_folder, walk
from ingest.pipeline import Ingestor
from ingest.report import IngestReport, Outcome, Progress

log = logging.getLogger(__name__)

RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class _Failed:
    """A file that failed, as it was on disk then, and when it may be read again."""

    size: int
    mtime_ns: int
    retry_at: float  # inf: not until it changes


@dataclass
class SyncResult:
    """One folder's sync: a full one at start, or one batch of changes; `error` when it could not run at all."""

    folder: Path
    report: IngestReport | None = None
    error: str = ""
    full: bool = False
    at: float = field(default_factory=time.time)

    @property
    def problems(self) -> list[Outcome]:
        return self.report.of("failed") if self.report else []

    def summary(self) -> str:
        """One line: the folder, then `totals`."""
        return f"{self.folder} ({'full sync' if self.full else 'changes'}): {self.totals()}"

    def totals(self) -> str:
        """What changed, what failed, what it cost."""
        if self.report is None:
            return f"sync failed: {self.error}"
        return self.report.summary()


class FolderWatcher:
    """Keeps `folders` in the knowledge base as they are on disk, with one folder ingest's filters.

    `within`: where files may really lie (symlinks resolved); a file whose target is elsewhere is skipped (the app
    lets users watch only folders under its allowed roots, and a link must not lead out of them).
    """

    def __init__(
        self,
        ingestor: Ingestor,
        folders: Sequence[Path],
        *,
        globs: list[str] | None = None,
        excludes: list[str] | None = None,
        doc_type: str | None = None,
        debounce_ms: int = 1600,
        within: Sequence[Path] | None = None,
    ) -> None:
        self.ingestor = ingestor
        resolved = {Path(f).expanduser().resolve() for f in folders}
        # A folder inside another watched one is watched as part of it: one root, one doc type per file.
        self.folders = sorted(f for f in resolved if not any(other in f.parents for other in resolved))
        self.globs = globs or []
        self.excludes = excludes or []
        self.doc_type = doc_type
        self.debounce_ms = debounce_ms
        self.within = [Path(w).resolve() for w in within] if within is not None else None
        self._failed: dict[str, _Failed] = {}

    def sync(self, folder: Path, progress: Progress | None = None) -> SyncResult:
        """The whole folder: what a watcher missed while it wasn't running."""
        folder = Path(folder).expanduser().resolve()
        return self._sync(folder, {folder}, progress, full=True)

    def apply(self, paths: Iterable[str | Path], progress: Progress | None = None) -> list[SyncResult]:
        """One batch of changed paths (any kind of change), folder by folder."""
        return [self._sync(folder, changed, progress) for folder, changed in self._by_folder(paths)]

    def _by_folder(self, paths: Iterable[str | Path]) -> list[tuple[Path, set[Path]]]:
        by_folder: dict[Path, set[Path]] = {}
        for raw in paths:
            path = Path(raw)
            folder = self.folder_of(path)
            if folder is not None:
                by_folder.setdefault(folder, set()).add(path)
        return sorted(by_folder.items())

    def folder_of(self, path: Path) -> Path | None:
        """The innermost watched folder holding `path`."""
        holders = [f for f in self.folders if path == f or f in path.parents]
        return max(holders, key=lambda f: len(f.parts)) if holders else None

    def run(
        self,
        on_result: Callable[[SyncResult], None],
        stop: threading.Event | None = None,
        progress: Callable[[], Progress] | None = None,
    ) -> None:
        """Sync each folder, then apply the watcher's batches until `stop` is set (or Ctrl+C in the main thread)."""
        import watchfiles  # the Rust watcher loads only for a watch

        make_progress = progress or Progress
        # Watching starts before the full syncs, so what changes during them comes in the first batch after them.
        # The watcher wakes every second with nothing (an empty batch), which is how its start is known.
        batches = watchfiles.watch(
            *self.folders, debounce=self.debounce_ms, stop_event=stop, yield_on_timeout=True, rust_timeout=1000
        )
        early = next(batches, None)
        if early is None:  # stopped already
            return
        for folder in self.folders:
            if stop is not None and stop.is_set():
                return
            on_result(self._guarded(folder, {folder}, make_progress(), full=True))
        for changes in itertools.chain([early], batches):
            for holder, paths in self._by_folder(path for _, path in changes):
                on_result(self._guarded(holder, paths, make_progress()))

    def _guarded(self, folder: Path, paths: set[Path], progress: Progress, full: bool = False) -> SyncResult:
        """One folder's sync; the store failing is said in the result, and watching goes on."""
        try:
            return self._sync(folder, paths, progress, full)
        except Exception as exc:
            log.debug("sync of %s failed", folder, exc_info=True)
            return SyncResult(folder, error=f"{type(exc).__name__}: {exc}"[:300], full=full)

    def _sync(self, folder: Path, changed: set[Path], progress: Progress | None, full: bool = False) -> SyncResult:
        """Read what exists under the changed paths, and remove the sources recorded under them that don't."""
        files: dict[str, FileToIngest] = {}
        problems: list[Outcome] = []
        for path in sorted(changed):
            if path.is_dir() and not path.is_symlink():
                found, skipped = walk(path, folder, self.globs, self.excludes, self.doc_type)
            elif path.exists():
                entry = file_in_folder(folder, path, self.globs, self.excludes, self.doc_type)
                found = [entry] if isinstance(entry, FileToIngest) else []
                skipped = [entry] if isinstance(entry, Outcome) else []
            else:
                found, skipped = [], []
            for file in found:
                if self._inside(file.path):
                    files[str(file.path)] = file
                else:
                    problems.append(Outcome(str(file.path), "skipped", "a link to outside the allowed folders"))
            problems.extend(skipped)
        held, stats = self._held(files)
        # Recorded sources at or under a changed path that it no longer yields (one read of the records).
        gone = [
            source
            for source in self.ingestor.kb.records.roots()
            if source not in files
            and source not in held
            and (Path(source) in changed or any(parent in changed for parent in Path(source).parents))
        ]
        todo = sorted((f for s, f in files.items() if s not in held), key=lambda f: str(f.path))
        report = self.ingestor.update(todo, sorted(gone), progress)
        self._remember(report, stats)
        report.outcomes[:0] = problems
        return SyncResult(folder, report, full=full)

    def _held(self, files: dict[str, FileToIngest]) -> tuple[set[str], dict[str, _Failed]]:
        """The files that failed before and are not to be read yet; each file's size and time now."""
        held, stats = set(), {}
        now = time.time()
        for source in files:
            try:
                stat = Path(source).stat()
            except OSError:
                continue
            stats[source] = _Failed(stat.st_size, stat.st_mtime_ns, float("inf"))
            failed = self._failed.get(source)
            if failed and (failed.size, failed.mtime_ns) == (stat.st_size, stat.st_mtime_ns) and now < failed.retry_at:
                held.add(source)
        return held, stats

    def _remember(self, report: IngestReport, stats: dict[str, _Failed]) -> None:
        for outcome in report.outcomes:
            if outcome.status == "failed" and outcome.source in stats:
                retry_at = time.time() + RETRY_AFTER_S if outcome.retry else float("inf")
                stat = stats[outcome.source]
                self._failed[outcome.source] = _Failed(stat.size, stat.mtime_ns, retry_at)
            else:
                self._failed.pop(outcome.source, None)

    def _inside(self, path: Path) -> bool:
        if self.within is None:
            return True
        real = path.resolve()
        return any(real == w or w in real.parents for w in self.within)
