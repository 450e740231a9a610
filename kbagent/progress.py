"""A terminal progress bar for ingest: files, chunks embedded, chunks per second, and pages OCR'd (a line of
its own, shown once a file needs OCR)."""

from __future__ import annotations

from typing import Any

from ingest import Outcome, Progress


class RichProgress(Progress):
    def __init__(self, console: Any, enabled: bool = True) -> None:
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
        self._ocr: Any = None  # the OCR line's task, added when the first page needs OCR

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
