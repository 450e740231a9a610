"""The viewer: seconds from a request to a view ready to show, and the share of cited passages it highlights.

Speed: page 1 and page 300 of a 300-page PDF (drawn as PNG with the highlight) and a passage near the middle of a
5 MB Markdown file (rendered as a window of safe HTML), each through `SourceViewer.view` as the app calls it,
with the drawing in the viewer's worker process: `cold` is the first request (the worker starts), `warm` the
median of the next REPEATS ones (the app keeps its worker).

Highlights: every chunk of every document of the sample set (samples/harborview) viewed as if cited; found means
the passage was highlighted in the rendered page or document, and `how` counts the exact, normalised (letters and
digits only: whitespace, hyphenation, ligatures, case) and fuzzy (difflib blocks) matches that found them.

On a shared CPU the times are high; on an idle machine rerun:

    .venv/bin/python bench/viewer_speed.py

Writes bench/results/viewer.json.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import save  # noqa: E402  (bench/record.py)

from kbagent.components import Components  # noqa: E402
from kbagent.settings import Settings  # noqa: E402
from tests.support.files import filler, write_pdf  # noqa: E402

REPEATS = 5


def _timed(viewer: object, source_id: str, chunk_id: str) -> tuple[float, list[float], bool]:
    times = []
    found = False
    for _ in range(REPEATS + 1):
        start = time.perf_counter()
        view = viewer.view(source_id, chunk_id)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
        found = view.found
    return times[0], times[1:], found


def speed(folder: Path, parts: Components) -> dict[str, object]:
    import random

    rng = random.Random(7)
    pages = [f"Page {n}\n" + "\n".join(filler(rng, 1)[i : i + 90] for i in range(0, 900, 90)) for n in range(1, 301)]
    pages[0] = "Page 1\nThe first page says the co-op opened in 1998 on Tidewater Lane."
    pages[299] = "Page 300\nThe last page says the tool library lends 140 tools."
    write_pdf(folder / "long.pdf", pages)
    rng = random.Random(8)
    paragraphs = [filler(rng, 3) for _ in range(21_500)]  # about 5 MB
    paragraphs[10_750] = "The spoke tension meter lives in drawer 14 of the blue cabinet, beside the truing stand."
    text = "# Big handbook\n\n" + "\n\n".join(paragraphs)
    (folder / "big.md").write_text(text, encoding="utf-8")
    parts.ingestor().run([folder])
    kb = parts.kb
    figures: dict[str, object] = {"markdown_mb": round(len(text.encode()) / 1e6, 2)}
    viewer = parts.viewer()
    try:
        for name, path, needle in [
            ("pdf_page_1", folder / "long.pdf", "opened in 1998"),
            ("pdf_page_300", folder / "long.pdf", "lends 140 tools"),
            ("markdown_5mb", folder / "big.md", "spoke tension meter"),
        ]:
            record = kb.records.get(str(path))
            assert record is not None
            chunk = next(r for r in kb.keywords.rows(record.chunk_ids) if needle in r.text)
            cold, warm, found = _timed(viewer, record.source_id, chunk.chunk_id)
            figures[name] = {
                "cold_s": round(cold, 3),
                "warm_median_s": round(statistics.median(warm), 3),
                "found": found,
            }
            print(name, figures[name], flush=True)
    finally:
        viewer.runner.close()
    return figures


def highlights(parts: Components) -> dict[str, object]:
    parts.ingestor().run([ROOT / "samples" / "harborview"])
    viewer = parts.viewer()
    kinds: Counter[str] = Counter()
    found: Counter[str] = Counter()
    how: Counter[str] = Counter()
    missed = []
    try:
        for record in parts.kb.sources():
            for chunk_id in record.chunk_ids:
                view = viewer.view(record.source_id, chunk_id)
                kinds[record.kind] += 1
                matched = view.page_image.how if view.page_image else (view.text.found if view.text else "")
                if view.found:
                    found[record.kind] += 1
                    how[matched] += 1
                else:
                    missed.append(f"{record.display} {chunk_id}")
    finally:
        viewer.runner.close()
    total = sum(kinds.values())
    return {
        "documents": len(parts.kb.sources()),
        "passages": total,
        "highlighted": sum(found.values()),
        "highlighted_share": round(sum(found.values()) / total, 4),
        "by_type": {kind: f"{found[kind]}/{kinds[kind]}" for kind in sorted(kinds)},
        "how": dict(how),
        "missed": missed,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "docs").mkdir()
        with Components(Settings(data_dir=base / "speed", _env_file=None)) as parts:
            figures = {"speed": speed(base / "docs", parts)}
        with Components(Settings(data_dir=base / "samples", _env_file=None)) as parts:
            figures["highlights"] = highlights(parts)
    print(figures["highlights"])
    print(save("viewer", figures))


if __name__ == "__main__":
    main()
