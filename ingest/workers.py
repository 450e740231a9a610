"""Files are read in a small pool of warm worker processes, each under a memory limit and a kill timer.

Parsers block in C code (PDFium, lxml, openpyxl's XML, zlib), where no check in this process can stop them:
a 2 KB PDF of nested forms grew a page render to 16 GB. So each file is read (loaded, OCR'd and chunked) in a
worker process whose address space is capped by RLIMIT_AS (an allocation past it fails: MemoryError in Python,
a crash in C), and which is killed, with its Tesseract child, when a file takes longer than its time or the
ingest stops (Ctrl+C). A killed worker is replaced on the next file; the folder goes on. Workers stay up for an
ingest and read file after file, returning chunks as plain data, so a file costs one round trip, not a start.

Written by hand because the ready-made pools (multiprocessing.Pool, concurrent.futures, pebble) kill a worker
only for one fixed timeout per task, where a file's OCR pages each extend its time and report progress, and a
stop must kill at once. Workers are plain `python -m ingest.workers` processes rather than multiprocessing's:
its spawn and forkserver children import the program's main module, which for `python app.py` is Gradio.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar, cast

from ingest.read import FileRead, ReadSettings, page_ocr, read_file

POLL_S = 0.05  # how often a waiting reader looks at the stop event
T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one file may cost in a worker."""

    memory_mb: int = 3072
    """The worker's address space (RLIMIT_AS), libraries and OCR engine included."""
    timeout_s: float = 60.0
    """Wall-clock seconds to read a file; each page OCR'd adds that page's time (see `ReadWorkers.read`)."""


CALL = "\0call"  # a task that is a function call, not a file to read (no path holds a NUL)


class WorkerError(Exception):
    """A call in a worker did not return: past its time, out of memory, died, or stopped. One line."""


class InProcess:
    """Files read in the ingest's own process: no limits, no worker start; for comparison and debugging."""

    def __init__(self, settings: ReadSettings) -> None:
        self.settings = settings

    def call(
        self, function: Callable[..., T], *args: object, timeout_s: float = 0.0, stop: threading.Event | None = None
    ) -> T:
        """`function(*args)` here (no limits): what `ReadWorkers.call` does in a worker."""
        return function(*args)

    def read(
        self,
        path: Path,
        raw: bytes,
        *,
        probe: bool,
        on_planned: Callable[[int], None],
        on_page: Callable[[float], None],
        stop: threading.Event,
    ) -> FileRead:
        ocr = page_ocr(self.settings, probe, on_planned, on_page, stop.is_set)
        try:
            return read_file(path, raw, self.settings, ocr)
        except Exception as exc:  # a loader bug must not stop the folder
            return FileRead(error=f"{type(exc).__name__}: {exc}"[:200], status="failed")

    def close(self) -> None:
        pass


class ReadWorkers:
    """Up to `size` worker processes, started on first use and kept until `close`; each `read` borrows one."""

    def __init__(self, settings: ReadSettings, size: int = 2, limits: Limits | None = None) -> None:
        self.settings = settings
        self.size = max(1, size)
        self.limits = limits or Limits()
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()

    def read(
        self,
        path: Path,
        raw: bytes,
        *,
        probe: bool,
        on_planned: Callable[[int], None],
        on_page: Callable[[float], None],
        stop: threading.Event,
    ) -> FileRead:
        """The file read by a worker, or why not: killed past its time, died (crashed or out of memory), or the
        ingest stopped. Its time is `limits.timeout_s` to load, then each page's OCR time limit plus a margin
        from the last page done, and no more than the file's OCR budget (and one page) for all its pages."""
        worker = self._borrow(stop)
        if worker is None:
            return _stopped()
        healthy = False
        try:
            read, healthy = worker.read((str(path), raw, probe), on_planned, on_page, stop, self._deadlines())
            return read
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                self._discard(worker)

    def call(
        self, function: Callable[..., T], *args: object, timeout_s: float = 0.0, stop: threading.Event | None = None
    ) -> T:
        """`function(*args)` in a worker, under the memory limit and killed after `timeout_s` (default: the
        limits' time to read a file); `function` is a module's own (it is sent by name) and returns plain data.
        Raises WorkerError, one line, when it does not return."""
        stop = stop or threading.Event()
        worker = self._borrow(stop)
        if worker is None:
            raise WorkerError("stopped")
        healthy = False
        seconds = timeout_s or self.limits.timeout_s
        try:
            kind, value, healthy = worker.exchange((CALL, function, args), _ignore, _ignore, stop, (seconds,) * 3)
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                self._discard(worker)
        if kind == "done":
            return cast(T, value)  # what `function` returned, through the pipe
        raise WorkerError(
            {
                "timeout": f"took longer than {seconds:g} s and was stopped",
                "died": f"its process died (more memory than its {self.limits.memory_mb} MB, or a crash)",
                "stopped": "stopped",
            }.get(kind, str(value))
        )

    def _deadlines(self) -> tuple[float, float, float]:
        """(seconds to load, seconds per OCR'd page: its OCR limit and the file's time to render it, in all)."""
        step = self.settings.ocr_timeout_s + self.limits.timeout_s
        return self.limits.timeout_s, step, self.limits.timeout_s + self.settings.ocr_budget_s + step

    def _borrow(self, stop: threading.Event) -> _Worker | None:
        while not stop.is_set():
            with contextlib.suppress(queue.Empty):
                return self._idle.get_nowait()
            with self._lock:
                start = self._started < self.size
                self._started += start
            if start:
                try:
                    worker = _Worker(self.settings, self.limits)
                except BaseException:
                    with self._lock:
                        self._started -= 1
                    raise
                with self._lock:
                    self._all.add(worker)
                return worker
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=POLL_S)
        return None

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            self._started -= 1

    def close(self) -> None:
        """Stop every worker (a busy one too: its reader gets a "stopped" result)."""
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.kill()


class _Worker:
    def __init__(self, settings: ReadSettings, limits: Limits) -> None:
        from_parent, to_child = os.pipe()  # (read end, write end)
        from_child, to_parent = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        command = [sys.executable, "-m", "ingest.workers", str(from_parent), str(to_parent), str(limits.memory_mb)]
        try:
            # Its own session: Ctrl+C in a terminal reaches the ingest, which stops the worker, not the worker.
            self.process = subprocess.Popen(
                command,
                pass_fds=(from_parent, to_parent),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # no library prints on the user's terminal
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        finally:
            os.close(from_parent)
            os.close(to_parent)
        self.send = Connection(to_child, readable=False)
        self.receive = Connection(from_child, writable=False)
        self.limits = limits
        self.send.send(settings)

    def read(
        self,
        task: tuple[str, bytes, bool],
        on_planned: Callable[[int], None],
        on_page: Callable[[float], None],
        stop: threading.Event,
        deadlines: tuple[float, float, float],
    ) -> tuple[FileRead, bool]:
        """(the result, whether this worker may read another file)."""
        _, value, healthy = self.exchange(task, on_planned, on_page, stop, deadlines)
        return cast(FileRead, value), healthy  # `read_file`'s result, or a FileRead saying why there is none

    def exchange(
        self,
        task: tuple[object, ...],
        on_planned: Callable[[int], None],
        on_page: Callable[[float], None],
        stop: threading.Event,
        deadlines: tuple[float, float, float],
    ) -> tuple[str, object, bool]:
        """(how it ended: done; failed or spent (a call raised; out of memory); timeout, died or stopped (a
        FileRead says why); the result; whether this worker may take another task)."""
        load_s, step_s, total_s = deadlines
        start = time.monotonic()
        deadline, last = start + load_s, start + total_s
        try:
            self.send.send(task)
            while True:
                if stop.is_set():
                    return "stopped", _stopped(), False
                if not self.receive.poll(POLL_S):
                    if time.monotonic() > min(deadline, last):
                        return "timeout", self._timed_out(time.monotonic() - start), False
                    continue
                kind, value = self.receive.recv()
                if kind == "planned":
                    on_planned(value)
                elif kind == "page":
                    on_page(value)
                else:
                    return kind, value, kind != "spent"  # a call that raised leaves a sound worker
                deadline = time.monotonic() + step_s
        except (EOFError, OSError, pickle.UnpicklingError):
            return "died", self._died(), False

    def _timed_out(self, seconds: float) -> FileRead:
        self.kill()
        return FileRead(
            error=f"reading it took longer than {seconds:.0f} s and was stopped (KBAGENT_READ_TIMEOUT_S)",
            status="failed",
            retry=True,
        )

    def _died(self) -> FileRead:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        how = signal.Signals(-code).name if code is not None and code < 0 else f"exit status {code}"
        return FileRead(
            error=f"the process reading it died ({how}): a broken file, or more memory than its "
            f"{self.limits.memory_mb} MB (KBAGENT_READ_MEMORY_MB)",
            status="failed",
            retry=True,
        )

    def kill(self) -> None:
        """The worker and whatever it started (Tesseract), at once."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.send.close()
        self.receive.close()


def _stopped() -> FileRead:
    return FileRead(error="not read, the ingest stopped", status="failed", retry=True)


def serve(receive: Connection, send: Connection, memory_mb: int) -> None:
    """A worker's loop: read each file it is sent, send back its heartbeats and its result."""
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings: ReadSettings = receive.recv()
    while True:
        try:
            task = receive.recv()
        except (EOFError, OSError):
            return  # the ingest is gone
        if task[0] == CALL:
            kind, result = _called(task[1], task[2], memory_mb)
            send.send((kind, result))
            if kind != "done":
                return
            continue
        path, raw, probe = task
        ocr = page_ocr(
            settings, probe, lambda pages: send.send(("planned", pages)), lambda s: send.send(("page", s)), _never
        )
        kind = "done"
        try:
            read = read_file(Path(path), raw, settings, ocr)
        except MemoryError:
            del raw
            kind = "spent"  # the heap may be in any state: this worker ends after saying so
            read = FileRead(
                error=f"needs more memory than a file may use ({memory_mb} MB, KBAGENT_READ_MEMORY_MB)",
                status="failed",
            )
        except Exception as exc:  # a loader bug must not stop the folder
            read = FileRead(error=f"{type(exc).__name__}: {exc}"[:200], status="failed")
        read.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        send.send((kind, read))
        if kind != "done":
            return


def _never() -> bool:
    return False


def _ignore(value: float) -> None:
    pass


def _called(function: Callable[..., object], args: tuple[object, ...], memory_mb: int) -> tuple[str, object]:
    """A call's ("done", result), or how it failed, as one line: ("spent", why) ends the worker."""
    try:
        return "done", function(*args)
    except MemoryError:
        return "spent", f"needs more memory than it may use ({memory_mb} MB)"
    except Exception as exc:  # the function's own failure: one line for its caller
        return "failed", f"{type(exc).__name__}: {str(exc)[:200]}"


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False), int(sys.argv[3]))
