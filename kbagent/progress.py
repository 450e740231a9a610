"""A terminal progress bar for ingest: files, chunks embedded, chunks per second, and pages OCR'd (a line of
its own, shown once a file needs OCR)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest import Outcome, Progress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID


class RichProgress(Progress):
    def __init__(self, console: Console, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._files = self._bar.add_task("files", total=None, rate="")
        self._chunks = self._bar.add_task("chunks", total=0, rate="")
        self._ocr: TaskID | None = None  # the OCR line's task, added when the first page needs OCR

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._bar.stop()

    def files_found(self, total: int) -> None:
        self._bar.update(self._files, total=total)

    def chunks_planned(self, count: int) -> None:
        task = self._bar.tasks[self._chunks]
        self._bar.update(self._chunks, total=(task.total or 0) + count)

    def chunks_embedded(self, count: int) -> None:
        self._bar.advance(self._chunks, count)
        task = self._bar.tasks[self._chunks]
        speed = task.speed
        self._bar.update(self._chunks, rate=f"{speed:.1f} chunks/s" if speed else "")

    def file_done(self, outcome: Outcome) -> None:
        if outcome.status in ("skipped", "removed"):
            return
        self._bar.advance(self._files, 1)

    def ocr_planned(self, pages: int) -> None:
        if self._ocr is None:
            self._ocr = self._bar.add_task("ocr", total=0, rate="")
        task = self._bar.tasks[self._ocr]
        self._bar.update(self._ocr, total=(task.total or 0) + pages)

    def ocr_page_done(self, seconds: float) -> None:
        if self._ocr is None:
            return
        self._bar.advance(self._ocr, 1)
        self._bar.update(self._ocr, rate=f"{seconds:.1f} s/page")


class LineProgress(Progress):
    """Progress as a line every few seconds, for work that may or may not be long (a watcher's batch): a short
    batch prints nothing, a long one says how far it got."""

    def __init__(self, console: Console, every_s: float = 5.0) -> None:
        import time

        self._console = console
        self._every_s = every_s
        self._clock = time.monotonic
        self._last = self._clock()
        self.files = self.done = self.embedded = 0

    def files_found(self, total: int) -> None:
        self.files += total

    def chunks_embedded(self, count: int) -> None:
        self.embedded += count
        self._maybe_show()

    def file_done(self, outcome: Outcome) -> None:
        self.done += 1
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = self._clock()
        if now - self._last >= self._every_s:
            self._last = now
            self._console.print(f"  … {self.done}/{self.files} files, {self.embedded} chunks embedded", markup=False)
