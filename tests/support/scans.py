"""Scanned pages made from known text: Pillow draws the text with a TrueType font (Debian's fonts-dejavu-core)
on a white page, optionally turned a little and speckled like a scanner's output. Used by the OCR tests and
bench/ocr.py."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

FONTS = Path("/usr/share/fonts/truetype/dejavu")
FONT_PACKAGE = "fonts-dejavu-core"


def font_path(name: str = "DejaVuSerif.ttf") -> Path:
    return FONTS / name


def scanned_page(
    text: str,
    *,
    font: str = "DejaVuSerif.ttf",
    size: int = 32,
    width: int = 1654,  # A4 at 200 dpi
    height: int = 2339,
    rotate: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Image:
    """A grey page with `text` wrapped to the page width; `rotate` in degrees, `noise` the share of pixels
    flipped to a random grey."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    face = ImageFont.truetype(str(font_path(font)), size)
    page = PILImage.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    margin = width // 10
    columns = max(20, int((width - 2 * margin) / (size * 0.55)))
    y = margin
    for paragraph in text.split("\n"):
        for line in textwrap.wrap(paragraph, columns) or [""]:
            draw.text((margin, y), line, font=face, fill=0)
            y += int(size * 1.5)
    if rotate:
        page = page.rotate(rotate, resample=PILImage.Resampling.BICUBIC, fillcolor=255)
    if noise:
        rng = random.Random(seed)
        pixels = page.load()
        assert pixels is not None
        for _ in range(int(width * height * noise)):
            pixels[rng.randrange(width), rng.randrange(height)] = rng.randrange(256)
    return page


def write_scanned_pdf(path: Path, pages: list[Image]) -> Path:
    """An image-only PDF (no text layer), one image per page, as a scanner makes them."""
    first, *rest = [page.convert("RGB") for page in pages]
    first.save(path, "PDF", resolution=200.0, save_all=True, append_images=rest)
    return path
