"""What an ingest reports: one `Outcome` per source, the `IngestReport` that adds them up (and its one counts
line, `summary`), and the `Progress` a caller is told as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Status = Literal["added", "updated", "moved", "unchanged", "failed", "skipped", "removed"]
"""What became of one source; a moved one's message says "from OLD"."""


@dataclass
class Outcome:
    source: str
    status: Status
    message: str = ""
    chunks: int = 0
    notes: list[str] = field(default_factory=list)
    """What was left out of a file that was ingested: hidden sheets, what a cap cut, pages OCR did not read."""
    ocr_pages: int = 0
    ocr_seconds: float = 0.0
    retry: bool = False
    """A failure that may not happen again (a timeout on a busy machine, a worker that died)."""


@dataclass
class IngestReport:
    outcomes: list[Outcome] = field(default_factory=list)
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0

    def of(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def counts(self) -> dict[Status, int]:
        return {name: len(self.of(name)) for name in get_args(Status)}

    def summary(self) -> str:
        """The one counts line every front door prints: what became of the sources, then what it cost."""
        c = self.counts
        rate = self.embedded / self.seconds if self.seconds else 0.0
        ocr = f"; {self.ocr_pages} pages OCR'd in {self.ocr_seconds:.1f}s" if self.ocr_pages else ""
        return (
            f"{c['added']} added, {c['updated']} updated, {c['unchanged']} unchanged, {c['failed']} failed, "
            f"{c['skipped']} skipped, {c['removed']} removed, {c['moved']} moved; {self.embedded} chunks embedded "
            f"({self.reused} reused) in {self.seconds:.1f}s ({rate:.1f} chunks/s){ocr}"
        )

    @property
    def ocr_pages(self) -> int:
        return sum(o.ocr_pages for o in self.outcomes)

    @property
    def ocr_seconds(self) -> float:
        return sum(o.ocr_seconds for o in self.outcomes)

    @property
    def succeeded(self) -> bool:
        """False only when nothing could be ingested and something failed."""
        c = self.counts
        return not (c["failed"] and not (c["added"] or c["updated"] or c["moved"] or c["unchanged"]))


class Progress:
    """What the pipeline tells its caller; the CLI draws a bar, the UI a progress widget."""

    def files_found(self, total: int) -> None: ...
    def chunks_planned(self, count: int) -> None: ...
    def chunks_embedded(self, count: int) -> None: ...
    def file_done(self, outcome: Outcome) -> None: ...
    def ocr_planned(self, pages: int) -> None: ...
    def ocr_page_done(self, seconds: float) -> None: ...
