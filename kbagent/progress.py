"""A terminal progress bar for ingest: files, chunks embedded, chunks per second."""

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
