"""Images → text by OCR, for image files and PDF pages without a text layer.

Two engines: Tesseract (Debian's `tesseract-ocr`; the default, picked by bench/ocr.py) and
RapidOCR (ONNX models shipped inside the `rapidocr` wheel). Neither downloads anything at run time. Every image is
checked before it is decoded (a decompression bomb is refused by its header), scaled down to what OCR needs, and
read within a time limit; a page that can't be read is one note, never a failed folder.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import shutil
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ingest.text.errors import ExtractError

if TYPE_CHECKING:
    from PIL.Image import Image

OcrMode = Literal["auto", "tesseract", "rapidocr", "off"]
ENGINES = ("tesseract", "rapidocr")  # the order `auto` tries them in: the better one by bench/ocr.py first
MAX_SIDE = 4000
"""Longest side, in pixels, an image is OCR'd at: an A4 page at 300 dpi is 3508; larger only costs time."""
RENDER_DPI = 200
"""PDF pages are rendered at this resolution (capped by MAX_SIDE): enough for 8-point text."""
_PDFIUM = threading.Lock()  # PDFium is not thread-safe


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image, timeout_s: float) -> str:
        """The text on `image`; ExtractError when it can't be read within `timeout_s`."""
        ...


class Tesseract:
    """The tesseract program, one child process per page, killed at the time limit so a page can't hang an ingest.

    Run by hand rather than through pytesseract, which can only pass the child this process's own environment:
    OMP_THREAD_LIMIT=1 is twice as fast on shared cores (bench/ocr.py) but must not limit this process's threads."""

    name = "tesseract"

    def __init__(self, lang: str = "eng", threads: int | None = 1) -> None:
        self.lang = lang
        self.threads = threads  # None: tesseract's own choice (all cores)

    @staticmethod
    def missing() -> str | None:
        if shutil.which("tesseract") is None:
            return "the tesseract program is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)"
        return None

    def read(self, image: Image, timeout_s: float) -> str:
        png = io.BytesIO()
        image.save(png, "PNG")
        env = {**os.environ, **({"OMP_THREAD_LIMIT": str(self.threads)} if self.threads else {})}
        command = ["tesseract", "stdin", "stdout", "-l", self.lang]
        try:
            done = subprocess.run(command, input=png.getvalue(), capture_output=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired as exc:
            raise ExtractError(f"OCR took longer than {timeout_s:g} s") from exc
        except OSError as exc:
            raise ExtractError(f"OCR failed ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if done.returncode != 0:
            error = done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit status {done.returncode}"]
            raise ExtractError(f"OCR failed (tesseract: {error[-1][:120]})")
        return done.stdout.decode("utf-8", "replace")


class RapidOcr:
    """RapidOCR on ONNX Runtime, in this process. It can't be stopped midway, so its time per page is bounded by
    the image size (MAX_SIDE, and RapidOCR's own 2000-pixel working size), not by a timer."""

    name = "rapidocr"

    def __init__(self, threads: int = -1) -> None:
        from rapidocr import RapidOCR

        self._engine = RapidOCR(
            params={"Global.log_level": "error", "EngineConfig.onnxruntime.intra_op_num_threads": threads}
        )
        self._lock = threading.Lock()  # one ONNX session, one page at a time

    @staticmethod
    def missing() -> str | None:
        if importlib.util.find_spec("rapidocr") is None or importlib.util.find_spec("onnxruntime") is None:
            return "rapidocr is not installed (pip install rapidocr onnxruntime)"
        return None

    def read(self, image: Image, timeout_s: float) -> str:
        import numpy as np

        try:
            with self._lock:
                result = self._engine(np.asarray(image.convert("RGB")))
        except Exception as exc:  # ONNX Runtime and OpenCV raise their own types
            raise ExtractError(f"OCR failed ({type(exc).__name__}: {str(exc)[:120]})") from exc
        return "\n".join(getattr(result, "txts", None) or ())


def missing(name: str) -> str | None:
    """Why engine `name` can't run here, or None."""
    return Tesseract.missing() if name == "tesseract" else RapidOcr.missing()


def build_engine(name: str) -> OcrEngine:
    return Tesseract() if name == "tesseract" else RapidOcr()


@dataclass
class OcrReader:
    """OCR for an ingest: the configured engine (built on first use) and the limits every page is read under."""

    mode: OcrMode = "auto"
    page_timeout_s: float = 60.0
    max_pixels: int = 50_000_000
    file_budget_s: float = 600.0
    """OCR seconds per file: pages past it are left unread, with a note (a 100,000-page scan is days of OCR)."""
    _engine: OcrEngine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def engine(self) -> OcrEngine:
        """The engine; ExtractError (one line, how to install it) when none of the wanted ones is installed."""
        with self._lock:
            if self._engine is None:
                names = ENGINES if self.mode == "auto" else (self.mode,)
                problems = [problem for name in names if (problem := missing(name))]
                usable = [name for name in names if not missing(name)]
                if not usable:
                    raise ExtractError(f"no OCR engine: {'; '.join(problems)}")
                self._engine = build_engine(usable[0])
            return self._engine

    def read(self, image: Image) -> str:
        return self.engine().read(fit(image, self.max_pixels), self.page_timeout_s)


class OcrNeeded(Exception):
    """Raised by a probe `PageOcr`: this file has pages to OCR, so it is read again on the OCR thread."""


@dataclass
class PageOcr:
    """OCR for the pages of one file, and its tally: pages read, seconds, one note per page that was not read.

    With `reader` None, OCR is off: each page that needs it is a note. With `probe`, the first page that needs
    OCR raises OcrNeeded instead (the pipeline reads text-only files on its reader thread, the rest on its OCR
    thread)."""

    reader: OcrReader | None = None
    probe: bool = False
    on_planned: Callable[[int], None] = lambda pages: None
    on_page: Callable[[float], None] = lambda seconds: None
    cancelled: Callable[[], bool] = lambda: False
    """True once the ingest stops (an error, Ctrl-C): the remaining pages are not read."""
    pages: int = 0
    seconds: float = 0.0
    failed: dict[str, list[str]] = field(default_factory=dict)
    """Why OCR could not read pages → those pages."""
    off: list[str] = field(default_factory=list)
    """The pages skipped because OCR is off."""
    blank: list[str] = field(default_factory=list)
    """The pages OCR found no text on (often the empty backs of scanned sheets)."""
    over_budget: list[str] = field(default_factory=list)
    """The pages left unread once the file's OCR time budget was spent (final: not read again)."""

    @property
    def notes(self) -> list[str]:
        """One line per reason pages were not read (OCR off, each failure), and one for the blank pages."""
        notes = [f"{_labels(self.off)} skipped: OCR is off (KBAGENT_OCR=off)"] if self.off else []
        notes += [f"{_labels(labels)}: {why}" for why, labels in self.failed.items()]
        if self.over_budget:
            budget = (self.reader or OcrReader()).file_budget_s
            notes.append(
                f"{_labels(self.over_budget)} not read: the OCR time per file ({budget:g} s) was spent "
                "(KBAGENT_OCR_BUDGET_S)"
            )
        return notes + ([f"{_labels(self.blank)}: OCR found no text"] if self.blank else [])

    @property
    def incomplete(self) -> bool:
        """Pages were left unread that a later ingest may read (OCR turned on, a longer time limit)."""
        return bool(self.off or self.failed)

    @property
    def enabled(self) -> bool:
        return self.reader is not None and self.reader.enabled

    @property
    def max_pixels(self) -> int:
        return (self.reader or OcrReader()).max_pixels

    def plan(self, pages: int) -> None:
        """`pages` pages of this file need OCR: a probe stops here, the real reader tells the progress line."""
        if pages and self.probe and self.enabled:
            raise OcrNeeded
        if pages and self.enabled:
            self.on_planned(pages)

    def read(self, label: str, image: Callable[[], Image]) -> str:
        """The text of the page `label` ("page 3"), or '' with a note saying why not. `image` renders or decodes
        it (ExtractError for a broken one)."""
        if self.reader is None or not self.reader.enabled:
            self.off.append(label)
            return ""
        if self.cancelled():
            self.failed.setdefault("not read, the ingest stopped", []).append(label)
            return ""
        if self.seconds >= self.reader.file_budget_s:
            self.over_budget.append(label)
            return ""
        start = time.perf_counter()
        try:
            text = self.reader.read(image()).strip()
        except ExtractError as exc:
            self.failed.setdefault(str(exc), []).append(label)
            return ""
        finally:
            seconds = time.perf_counter() - start
            self.seconds += seconds
            self.on_page(seconds)
        self.pages += 1
        if not text:
            self.blank.append(label)
        return text


def _labels(labels: list[str]) -> str:
    """The labels as one phrase, "page 1" and "page 2" as "pages 1, 2"; at most ten named."""
    shown = labels[:10]
    if len(shown) > 1 and all(label.startswith("page ") for label in shown):
        shown = ["pages " + shown[0].removeprefix("page "), *(label.removeprefix("page ") for label in shown[1:])]
    return ", ".join(shown) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")


def fit(image: Image, max_pixels: int) -> Image:
    """`image` as OCR wants it: 8-bit grey, at most MAX_SIDE pixels on its longest side."""
    width, height = image.size
    if width * height > max_pixels:
        raise ExtractError(too_large(width, height, max_pixels))
    grey = image.convert("L")
    if max(width, height) > MAX_SIDE:
        grey.thumbnail((MAX_SIDE, MAX_SIDE))
    return grey


def too_large(width: int, height: int, max_pixels: int) -> str:
    return (
        f"image too large to OCR ({width} × {height} pixels > {max_pixels / 1e6:g} M; "
        "raise KBAGENT_OCR_MAX_MEGAPIXELS to read it)"
    )


def image_frames(raw: bytes, max_pixels: int) -> list[Callable[[], Image]]:
    """One decoder per frame (a TIFF may hold many pages) of an image file. The header is checked before any
    pixel is decoded, so a decompression bomb costs nothing; ExtractError says what is wrong."""
    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)  # the size is checked below
            image = PILImage.open(io.BytesIO(raw))
    except PILImage.DecompressionBombError as exc:  # Pillow's own limit, far above ours, refused by the header
        limit = 2 * (PILImage.MAX_IMAGE_PIXELS or 0) / 1e6
        raise ExtractError(f"image too large to OCR (over {limit:.0f} M pixels: a decompression bomb)") from exc
    except PILImage.UnidentifiedImageError as exc:
        raise ExtractError("not a readable image (unknown format, or the start of the file is corrupt)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ExtractError(f"not a readable image ({type(exc).__name__}: {str(exc)[:100]})") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ExtractError(too_large(width, height, max_pixels))
    try:
        frames = int(getattr(image, "n_frames", 1) or 1)  # a TIFF's frames are counted by walking them
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ExtractError(f"corrupt image ({type(exc).__name__}: {str(exc)[:100]})") from exc
    return [functools.partial(_frame, image, index, max_pixels) for index in range(frames)]


def _frame(image: Image, index: int, max_pixels: int) -> Image:
    try:
        image.seek(index)
        if image.size[0] * image.size[1] > max_pixels:  # a later frame of a TIFF may be larger than the first
            raise ExtractError(too_large(*image.size, max_pixels))
        if max(image.size) > 2 * MAX_SIDE and image.format == "JPEG":
            image.draft("L", (MAX_SIDE, MAX_SIDE))  # decode at a fraction of the size: less memory and time
        image.load()
        return image.copy()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # a truncated or corrupt file
        raise ExtractError(f"corrupt image ({type(exc).__name__}: {str(exc)[:100]})") from exc


def pdf_page_image(raw: bytes, number: int, max_pixels: int) -> Image:
    """Page `number` (1-based) of a PDF rendered at RENDER_DPI, scaled down to fit MAX_SIDE and `max_pixels`."""
    import pypdfium2 as pdfium

    try:
        with _PDFIUM:
            document = pdfium.PdfDocument(raw)
            try:
                page = document[number - 1]
                width, height = page.get_size()  # points
                scale = RENDER_DPI / 72
                scale = min(scale, MAX_SIDE / max(width, height, 1), (max_pixels / max(width * height, 1)) ** 0.5)
                return page.render(scale=scale, grayscale=True).to_pil()
            finally:
                document.close()
    except (pdfium.PdfiumError, OSError, ValueError, IndexError) as exc:
        raise ExtractError(f"could not render it ({type(exc).__name__}: {str(exc)[:100]})") from exc
