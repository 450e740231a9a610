"""OCR engines on scanned pages rendered from known text: character error rate and seconds per page.

Pages are drawn by tests/support/scans.py (DejaVu fonts, three faces, three sizes; some turned by a degree and speckled
like a scan) at 200 dpi, the resolution PDF pages are rendered at for OCR. Each engine reads every page through
kbagent's own reader (ingest/text/ocr.py: the same grey-scale, size cap and time limit as an ingest), once with
its default threads and once single-threaded. CER = edit distance / reference length, on text with whitespace
runs collapsed. Timings are wall-clock on a CPU shared with other work: compare engines within one run.

    .venv/bin/python bench/ocr.py [--pages N]

Prints a table, writes bench/results/ocr.json.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from PIL.Image import Image
from record import save  # bench/record.py: every result file with its command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.text.ocr import ENGINES, OcrReader, RapidOcr, Tesseract, missing
from tests.support.scans import scanned_page

WORDS = (
    "pump valve invoice warranty delivery meeting report budget contract schedule engineer customer office "
    "address litres minutes kilometres payment account service quarterly revision section figure table north "
    "harbour station bridge river motor signal pressure measured approved returned"
).split()
STYLES = [  # (font, pixel size at 200 dpi, degrees turned, share of speckled pixels)
    ("DejaVuSerif.ttf", 32, 0.0, 0.0),
    ("DejaVuSans.ttf", 32, 0.0, 0.0),
    ("DejaVuSansMono.ttf", 32, 0.0, 0.0),
    ("DejaVuSerif.ttf", 24, 0.0, 0.0),
    ("DejaVuSans.ttf", 44, 0.0, 0.0),
    ("DejaVuSerif.ttf", 32, 1.0, 0.01),
    ("DejaVuSans.ttf", 28, -0.8, 0.02),
    ("DejaVuSerif.ttf", 24, 0.5, 0.01),
]


def page_text(seed: int, sentences: int = 12) -> str:
    """Sentences of common words with numbers and codes, the kind of facts a search looks for."""
    rng = random.Random(seed)
    lines = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 11))]
        words.insert(rng.randrange(len(words)), str(rng.randint(2, 9999)))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f"{rng.choice('ABKMZ')}-{rng.randint(10, 99)}")
        lines.append(" ".join(words).capitalize() + ".")
    return "\n".join(lines)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (no library here does it; two rows of the usual table)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, read: str) -> float:
    ref, got = " ".join(reference.split()), " ".join(read.split())
    return edit_distance(ref, got) / max(len(ref), 1)


def run(engine: str, threads: str, pages: list[tuple[str, Image]]) -> dict[str, object]:
    reader = OcrReader(engine)  # type: ignore[arg-type]
    one = threads == "1"
    reader._engine = Tesseract(threads=1 if one else None) if engine == "tesseract" else RapidOcr(1 if one else -1)
    reader.read(pages[0][1])  # warm-up: models loaded, caches filled
    errors, seconds = [], []
    for text, image in pages:
        start = time.perf_counter()
        read = reader.read(image)
        seconds.append(time.perf_counter() - start)
        errors.append(cer(text, read))
    return {
        "engine": engine,
        "threads": threads,
        "cer_mean": round(statistics.mean(errors), 4),
        "cer_worst": round(max(errors), 4),
        "seconds_per_page": round(statistics.mean(seconds), 2),
        "cer_by_page": [round(e, 4) for e in errors],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=len(STYLES), help="How many of the page styles to read.")
    args = parser.parse_args()
    pages = []
    for seed, (font, size, rotate, noise) in enumerate(STYLES[: args.pages]):
        text = page_text(seed)
        pages.append((text, scanned_page(text, font=font, size=size, rotate=rotate, noise=noise, seed=seed)))
    rows = []
    for engine in ENGINES:
        if problem := missing(engine):
            print(f"{engine}: not measured, {problem}")
            continue
        for threads in ("default", "1"):
            rows.append(run(engine, threads, pages))
            row = rows[-1]
            print(
                f"{engine:10} threads={threads:7} CER {row['cer_mean']:.2%} (worst {row['cer_worst']:.2%})  "
                f"{row['seconds_per_page']:.2f} s/page",
                flush=True,
            )
    styles = [{"font": f, "px_at_200dpi": s, "rotate_deg": r, "noise": n} for f, s, r, n in STYLES[: args.pages]]
    note = f"{os.cpu_count()} CPUs shared with other work while measured: timings are contended"
    print(f"written: {save('ocr', {'pages': styles, 'engines': rows, 'note': note})}")


if __name__ == "__main__":
    main()
