"""kbagent's own .pptx/.xlsx/.epub loaders against Microsoft's markitdown converter, on generated files: is the
structure kept (slide numbers, sheet names, rows that name their columns, hidden sheets left out), is each fact
found by search and cited at its slide/sheet/chapter, how fast, and how many packages each pulls in.

    python -m venv /tmp/md && /tmp/md/bin/pip install 'markitdown[pptx,xlsx]==0.1.9'   # kept out of kbagent's venv
    .venv/bin/python bench/loaders.py --markitdown-python /tmp/md/bin/python [--deps]

Both outputs go through kbagent's own pipeline (chunker, store, hybrid search with its defaults, top 3), so
only the conversion differs. markitdown's place is counted as found when the chunk itself shows it (its "Slide number"
comment, its sheet or chapter heading in the chunk's heading path), since it returns one text per file.
`--deps` asks pip (a dry run, nothing installed) which packages each choice pulls in. Writes
bench/results/loaders.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_core.documents import Document  # noqa: E402

from ingest.loaders import load  # noqa: E402
from tests.support.files import WORDS, filler, write_epub, write_pptx, write_xlsx  # noqa: E402

MARKITDOWN = """
import json, statistics, sys, time
start = time.perf_counter()
from markitdown import MarkItDown
converter = MarkItDown()
imported = time.perf_counter() - start
out = {"import_s": imported, "files": {}}
for path in sys.argv[1:]:
    times, text = [], ""
    for _ in range(3):
        t = time.perf_counter()
        text = converter.convert(path).text_content
        times.append(time.perf_counter() - t)
    out["files"][path] = {"text": text, "seconds": statistics.median(times)}
print(json.dumps(out))
"""


def make_fixtures(folder: Path) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """A 24-slide deck, a 3-sheet workbook (one hidden, 300 rows under a title row), a 15-chapter book, and
    the questions whose facts they plant: (query, fact, location, what markitdown shows for the place)."""
    rng = random.Random(7)
    slides: list[dict[str, object]] = [{"title": f"Topic {n}", "bullets": [filler(rng, 3)]} for n in range(1, 25)]
    slides[6] = {
        "title": "New Vessels",
        "bullets": ["A new hull was ordered from the Varnholm shipyard", filler(rng, 2)],
    }
    slides[10] = {
        "title": "Ridership",
        "bullets": ["Riders per route"],
        "table": [["Route", "Riders"], ["Pier 9", "41,200"], ["Skerry", "3,050"]],
    }
    slides[19]["notes"] = "Mention the storm closure on 3 March."
    stations = [["Station readings, winter"], [], ["station", "reading", "unit", "inspector"]]
    stations += [
        [f"S-{n:03d}", 990 + (n * 37) % 50 + 0.5, "hPa", rng.choice(["Ana", "Ben", "Cleo"])] for n in range(300)
    ]
    crew = [["name", "role", "boat"]] + [
        [f"Crew {n}", rng.choice(["pilot", "deckhand", "engineer"]), f"B{n % 7}"] for n in range(50)
    ]
    crew[21] = ["Marit Olsen", "harbour pilot", "Kestrel"]
    payroll = [["name", "salary"], ["Marit Olsen", "secret-salary-88123"]]
    chapters = [
        (f"Chapter of the {rng.choice(WORDS)} {n}", filler(rng, 8) + "\n\n" + filler(rng, 8)) for n in range(1, 16)
    ]
    chapters[3] = (
        "The Lens",
        filler(rng, 5) + "\n\nA storm cracked the lens of the Skerry light at the equinox.\n\n" + filler(rng, 5),
    )
    chapters[8] = (
        "Provisions",
        filler(rng, 5) + "\n\nThe keeper stored 212 jars of cloudberry jam in the cellar.\n\n" + filler(rng, 5),
    )
    chapters[12] = (
        "The Relief",
        filler(rng, 5) + "\n\nThe relief boat was named Tern and came every ninth day.\n\n" + filler(rng, 5),
    )
    files = {
        "pptx": write_pptx(folder / "harbour-review.pptx", slides, title="Harbour Review"),
        "xlsx": write_xlsx(
            folder / "harbour-data.xlsx", {"Stations": stations, "Crew": crew, "Payroll": payroll}, hidden=("Payroll",)
        ),
        "epub": write_epub(folder / "keeper.epub", "The Lighthouse Keeper", chapters),
    }
    s217 = stations[3 + 217]
    questions = [
        {
            "type": "pptx",
            "query": "which shipyard builds the new hull",
            "fact": "Varnholm",
            "location": "slide 7",
            "marker": "Slide number: 7",
        },
        {
            "type": "pptx",
            "query": "how many riders on the Pier 9 route",
            "fact": "41,200",
            "location": "slide 11",
            "marker": "Slide number: 11",
        },
        {
            "type": "pptx",
            "query": "when was the storm closure",
            "fact": "3 March",
            "location": "slide 20",
            "marker": "Slide number: 20",
        },
        {
            "type": "xlsx",
            "query": "what reading did station S-217 show",
            "fact": f"{s217[1]}",
            "location": "sheet Stations",
            "marker": "Stations",
            "column": "reading",
        },
        {
            "type": "xlsx",
            "query": "which boat does Marit Olsen pilot",
            "fact": "Kestrel",
            "location": "sheet Crew",
            "marker": "Crew",
            "column": "boat",
        },
        {
            "type": "epub",
            "query": "what cracked the lens of the Skerry light",
            "fact": "equinox",
            "location": "chapter 4",
            "marker": "The Lens",
        },
        {
            "type": "epub",
            "query": "how many jars of cloudberry jam",
            "fact": "212 jars",
            "location": "chapter 9",
            "marker": "Provisions",
        },
        {
            "type": "epub",
            "query": "what was the relief boat called",
            "fact": "Tern",
            "location": "chapter 13",
            "marker": "The Relief",
        },
    ]
    return files, questions


def own(files: dict[str, Path]) -> dict[str, Any]:
    timer = "import time; s = time.perf_counter(); import pptx, openpyxl, xlrd; print(time.perf_counter() - s)"
    imported = subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True, check=True).stdout
    out: dict[str, Any] = {"import_s": float(imported), "files": {}}
    for kind, path in files.items():
        raw, times = path.read_bytes(), []
        for _ in range(3):
            t = time.perf_counter()
            documents = load(path, raw)
            times.append(time.perf_counter() - t)
        out["files"][kind] = {"documents": documents, "seconds": statistics.median(times)}
    return out


def markitdown(python: str, files: dict[str, Path]) -> dict[str, Any]:
    run = subprocess.run(
        [python, "-c", MARKITDOWN, *map(str, files.values())], capture_output=True, text=True, check=True
    )
    found = json.loads(run.stdout)
    by_path = found["files"]
    out: dict[str, Any] = {"import_s": found["import_s"], "files": {}}
    for kind, path in files.items():
        text = by_path[str(path)]["text"]
        document = Document(text, metadata={"title": path.stem, "format": "markdown"})
        out["files"][kind] = {"documents": [document], "seconds": by_path[str(path)]["seconds"]}
    return out


def score(converted: dict[str, Any], questions: list[dict[str, str]], settings: Any, embedder: Any) -> dict[str, Any]:
    """Each file's documents through kbagent's real pipeline (chunker, store, hybrid search, top 3) in a fresh
    store: is the fact found, is its place shown, does a row name its columns; plus what each file kept."""
    from ingest import IngestConfig, build_ingestor
    from ingest.pipeline import TextSource
    from kbagent.components import open_knowledge_base

    with open_knowledge_base(settings, embedder) as kb:
        sources = [
            TextSource(kind, "\n".join(d.page_content for d in item["documents"]), kind, documents=item["documents"])
            for kind, item in converted["files"].items()
        ]
        report = build_ingestor(IngestConfig(), kb).run_texts(sources)
        per_question = []
        for q in questions:
            hits = kb.search(q["query"], k=3)
            first = next((c for c in hits if q["fact"] in c.page_content), None)
            per_question.append(
                {
                    "query": q["query"],
                    "found_at_1": bool(hits) and q["fact"] in hits[0].page_content,
                    "found_in_3": first is not None,
                    "place_shown": first is not None and _place_shown(first, q),
                    "row_names_its_columns": (q["column"] + ": ") in first.page_content
                    if first and "column" in q
                    else None,
                }
            )
    figures: dict[str, Any] = {"import_s": round(converted["import_s"], 3), "chunks": report.embedded, "types": {}}
    for kind, item in converted["files"].items():
        text = "\n".join(d.page_content for d in item["documents"])
        asked = [p for p, q in zip(per_question, questions, strict=True) if q["type"] == kind]
        figures["types"][kind] = {
            "seconds": round(item["seconds"], 4),
            "chars": len(text),
            "documents": len(item["documents"]),
            "found_at_1": sum(p["found_at_1"] for p in asked),
            "found_in_3": sum(p["found_in_3"] for p in asked),
            "place_shown": sum(p["place_shown"] for p in asked),
            "questions": len(asked),
        }
    xlsx = figures["types"]["xlsx"]
    xlsx["hidden_sheet_leaked"] = "secret-salary" in "".join(
        d.page_content for d in converted["files"]["xlsx"]["documents"]
    )
    xlsx["rows_name_their_columns"] = [
        p["row_names_its_columns"] for p in per_question if p["row_names_its_columns"] is not None
    ]
    figures["questions"] = per_question
    return figures


def _place_shown(chunk: Document, q: dict[str, str]) -> bool:
    if chunk.metadata.get("location"):
        return chunk.metadata["location"] == q["location"]
    return q["marker"] in chunk.page_content or q["marker"] in str(chunk.metadata.get("section", ""))


def dependencies(requirements: list[str]) -> dict[str, Any]:
    """What pip would install for `requirements` into an empty environment, and which of it kbagent lacks."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                *requirements,
            ],
            check=True,
            capture_output=True,
        )
        names = sorted(item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"])
    have = kbagent_closure()
    new = [n for n in names if _key(n) not in have]
    return {"requirements": requirements, "packages": len(names), "names": names, "new_to_kbagent": new}


def kbagent_closure() -> set[str]:
    """Every package kbagent's installed metadata requires, directly or not (its extras left out)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = ["kbagent"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_key(requirement.name))
    return seen


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markitdown-python", required=True, help="A Python with markitdown[pptx,xlsx] installed.")
    parser.add_argument("--deps", action="store_true", help="Count the packages each choice installs (pip dry run).")
    args = parser.parse_args()

    from kbagent.settings import Settings
    from knowledge_base.embeddings import build_embedder

    settings = Settings(_env_file=None)
    embedder = build_embedder(settings.embedding, settings.store.models_path)
    with tempfile.TemporaryDirectory() as folder:
        files, questions = make_fixtures(Path(folder))
        stores = {name: settings.override(data_dir=Path(folder) / name) for name in ("own", "markitdown")}
        results = {
            "kbagent": score(own(files), questions, stores["own"], embedder),
            "markitdown": score(markitdown(args.markitdown_python, files), questions, stores["markitdown"], embedder),
            "note": "timings on a 2-core machine shared with other jobs: compare them with each other only",
            "load_average_1min": round(os.getloadavg()[0], 1),
        }
    if args.deps:
        results["dependencies"] = {
            "kbagent": dependencies(["python-pptx", "openpyxl", "xlrd"]),
            "markitdown": dependencies(["markitdown[pptx,xlsx]==0.1.9"]),
        }
    for name in ("kbagent", "markitdown"):
        for kind, row in results[name]["types"].items():
            print(
                f"{name:10} {kind}: found {row['found_at_1']}/{row['questions']} at 1, {row['found_in_3']} in 3, "
                f"place shown {row['place_shown']}, {row['seconds'] * 1000:.0f} ms, {row['documents']} documents"
            )
    print(f"written to {save('loaders', results)}")


if __name__ == "__main__":
    main()
