"""The app's watched folders: a list users edit in the Knowledge base tab, kept in DATA_DIR/watched_folders.json,
watched by one background thread, with each folder's last sync and errors for the tab to show.

An app user types a path on the server, so only folders under KBAGENT_WATCH_ROOTS may be watched (symlinks
resolved, for the folder and for every file in it); with no roots set the app watches nothing. `kbagent watch`,
run by the owner in a terminal, has no such limit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.pipeline import Ingestor
from ingest.watch import FolderWatcher, SyncResult
from kbagent.errors import UserError

log = logging.getLogger(__name__)
MAX_FOLDERS = 50
MAX_ERRORS = 5  # the last errors shown per folder


@dataclass
class FolderStatus:
    folder: str
    last_sync: float | None = None
    summary: str = "waiting for the first sync"
    errors: list[str] = field(default_factory=list)


class WatchedFolders:
    """The watch list, its refusals, and the thread that keeps the listed folders in sync."""

    def __init__(
        self, ingestor: Callable[[], Ingestor], list_path: Path, roots: list[Path], debounce_ms: int = 1600
    ) -> None:
        self._ingestor = ingestor
        self.list_path = list_path
        self.roots = [r.resolve() for r in roots]
        self.debounce_ms = debounce_ms
        self._lock = threading.Lock()
        self._status: dict[str, FolderStatus] = {}
        self._changed = threading.Event()  # stops the running watcher, which starts again on the new list
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._folders = self._load()

    # ---- the list ----------------------------------------------------------------------------------

    def folders(self) -> list[str]:
        with self._lock:
            return list(self._folders)

    def status(self) -> list[FolderStatus]:
        with self._lock:
            return [
                self._status.get(f) or FolderStatus(f, summary=self._refusal(f) or "waiting") for f in self._folders
            ]

    def add(self, typed: str) -> str:
        """Watch a folder typed by a user; UserError (one line) when it may not be watched."""
        folder = self.allowed(typed)
        with self._lock:
            if folder in self._folders:
                raise UserError(f"{folder} is watched already")
            if len(self._folders) >= MAX_FOLDERS:
                raise UserError(f"at most {MAX_FOLDERS} folders can be watched")
            self._folders.append(folder)
            self._save()
        self._changed.set()
        return folder

    def remove(self, typed: str) -> str:
        """Stop watching a folder (its sources stay in the knowledge base)."""
        wanted = typed.strip()
        with self._lock:
            match = next((f for f in self._folders if wanted in (f, _resolved(wanted))), None)
            if match is None:
                raise UserError(f"{wanted or 'that folder'} is not watched")
            self._folders.remove(match)
            self._status.pop(match, None)
            self._save()
        self._changed.set()
        return match

    def allowed(self, typed: str) -> str:
        """The folder as it will be watched (absolute, symlinks resolved), or UserError saying why not."""
        typed = (typed or "").strip()
        if not self.roots:
            raise UserError("watching folders from the app is off: the server's owner sets KBAGENT_WATCH_ROOTS")
        if not typed or "\x00" in typed or len(typed) > 4096:
            raise UserError("type the full path of a folder on the server")
        if not os.path.isabs(typed):
            raise UserError(f"type a full path (starting with /) under {self._roots_text()}")
        folder = _resolved(typed)
        refusal = self._refusal(folder)
        if refusal:
            raise UserError(refusal)
        if not Path(folder).is_dir():
            raise UserError(f"no folder at {typed}")
        return folder

    def _refusal(self, folder: str) -> str | None:
        path = Path(folder)
        if not any(path == root or root in path.parents for root in self.roots):
            return f"{folder} is not under the folders the app may watch ({self._roots_text()})"
        return None

    def _roots_text(self) -> str:
        return ", ".join(str(r) for r in self.roots) or "none: KBAGENT_WATCH_ROOTS is empty"

    def _load(self) -> list[str]:
        try:
            data = json.loads(self.list_path.read_text(encoding="utf-8"))
            folders = data.get("folders", []) if isinstance(data, dict) else []
            return [f for f in folders if isinstance(f, str)][:MAX_FOLDERS]
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring the watched folders list %s: %s", self.list_path, exc)
            return []

    def _save(self) -> None:
        """Written beside and renamed over the list, so a crash leaves the old list or the new one."""
        self.list_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.list_path.with_name(self.list_path.name + ".partial")
        partial.write_text(json.dumps({"folders": self._folders}, indent=2), encoding="utf-8")
        os.replace(partial, self.list_path)

    # ---- the watcher -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background watcher (once, and only where the app may watch); it idles while the list is empty."""
        if self._thread is None and self.roots:
            self._thread = threading.Thread(target=self._watch, name="kbagent-watch", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30) -> None:
        self._closed.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _watch(self) -> None:
        while not self._closed.is_set():
            self._changed.clear()  # before the list is read: a change from now on restarts the watcher
            folders = [f for f in self.folders() if self._usable(f)]
            if not folders:
                self._changed.wait()
                continue
            try:
                watcher = FolderWatcher(
                    self._ingestor(), [Path(f) for f in folders], debounce_ms=self.debounce_ms, within=self.roots
                )
                watcher.run(self._record, stop=self._changed)
            except Exception as exc:  # a folder gone between the check and the start, the store failing
                log.warning("watching folders failed: %s", exc)
                for folder in folders:
                    self._note_error(folder, f"{type(exc).__name__}: {exc}"[:300])
                self._changed.wait(30)  # then try again

    def _usable(self, folder: str) -> bool:
        refusal = self._refusal(folder) or (None if Path(folder).is_dir() else f"no folder at {folder}")
        if refusal:
            self._note_error(folder, refusal)
        return refusal is None

    def _record(self, result: SyncResult) -> None:
        with self._lock:
            status = self._status.setdefault(str(result.folder), FolderStatus(str(result.folder)))
            status.last_sync = result.at
            status.summary = ("full sync: " if result.full else "changes: ") + result.totals()
            errors = [f"{o.source}: {o.message}" for o in result.problems]
            if result.error:
                errors.append(result.error)
            if errors:
                status.errors = (status.errors + [f"{_clock(result.at)} {e}" for e in errors])[-MAX_ERRORS:]

    def _note_error(self, folder: str, message: str) -> None:
        with self._lock:
            status = self._status.setdefault(folder, FolderStatus(folder))
            status.summary = message
            line = f"{_clock(time.time())} {message}"
            if not status.errors or status.errors[-1].split(" ", 2)[-1] != message:  # after the date and time
                status.errors = [*status.errors, line][-MAX_ERRORS:]


def _resolved(typed: str) -> str:
    return str(Path(typed).resolve())


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
