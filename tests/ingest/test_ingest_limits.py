"""Every file is bounded in time and memory while it is read, not after: the hostile files of issue 26.

Each file here costs far more to read than its size (tests/support/hostile.py makes them). The property: the ingest
stays within its limits (a worker's memory and time, the file's character budget and page cap), says what it
cut or why it failed in one line, and goes on with the rest of the folder.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from ingest import IngestConfig, build_ingestor
from ingest.loaders import load
from ingest.watch import FolderWatcher
from knowledge_base import KnowledgeBase
from tests.support import hostile
from tests.support.files import write_pdf

SMALL = 0.05  # M characters a file may hold in these tests: about 70 chunks, embedded in a few seconds


def _ingest(kb: KnowledgeBase, *paths: Path, **config: object) -> dict[str, object]:
    report = build_ingestor(IngestConfig(**config), kb).run(list(paths))  # type: ignore[arg-type]
    return {Path(o.source).name: o for o in report.outcomes}


CHUNKS = 2 * SMALL * 2**20 / 800  # the most chunks of 800 characters the budget can fill, twice over


# ------------------------------------------------------------------------------ the character budget


def test_shared_string_bomb_is_cut_while_it_is_read(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """76 KB of .xlsx whose 30,000 cells all point at one 32,000-character string (a billion characters): read
    in a worker of 1 GB, it is cut at the budget instead of growing to gigabytes first."""
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(hostile.shared_string_xlsx())
    assert path.stat().st_size < 100_000
    start = time.monotonic()
    outcome = _ingest(embedded_kb, path, max_text_mb=SMALL, read_memory_mb=1024)["bomb.xlsx"]
    assert outcome.status == "added", outcome  # type: ignore[attr-defined]
    assert any("text cut at 0.05 M characters" in note for note in outcome.notes)  # type: ignore[attr-defined]
    assert outcome.chunks < CHUNKS  # type: ignore[attr-defined]
    assert time.monotonic() - start < 60


def test_e_mail_attachments_share_the_message_budget(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """Three attachments, each under the limit alone, together over it: one budget for the file."""
    path = tmp_path / "logs.eml"
    path.write_bytes(hostile.mail_with_attachments(3, 30_000))
    outcome = _ingest(embedded_kb, path, max_text_mb=SMALL)["logs.eml"]
    assert outcome.status == "added", outcome  # type: ignore[attr-defined]
    assert any("text cut" in note for note in outcome.notes)  # type: ignore[attr-defined]
    assert outcome.chunks < CHUNKS  # type: ignore[attr-defined]


def test_column_xfd_rows_are_stored_ragged(tmp_path: Path) -> None:
    """One cell in the last column (XFD) per row: the reader keeps the cells a row has, not 16,384 per row."""
    path = tmp_path / "wide.xlsx"
    path.write_bytes(hostile.column_xfd_xlsx(5000))
    tracemalloc.start()
    try:
        [doc] = load(path, path.read_bytes())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MB"
    assert "XFD: 4999" in doc.page_content


def test_sheet_rows_are_capped_in_width_and_cell_length(tmp_path: Path) -> None:
    from ingest.loaders import sheets
    from ingest.text.reading import Reading

    row = b'<row r="1"><c r="A1" t="inlineStr"><is><t>' + b"w" * 40_000 + b"</t></is></c>"
    row += b"".join(b'<c r="%s1"><v>%d</v></c>' % (hostile._column(n).encode(), n) for n in range(1, 1100))
    path = tmp_path / "ragged.xlsx"
    path.write_bytes(hostile._xlsx(row + b"</row>"))
    reading = Reading()
    [doc] = load(path, path.read_bytes(), reading)
    cells = doc.page_content.splitlines()[-1].split("; ")
    assert len(cells) == sheets.MAX_CELLS
    assert len(cells[0]) == len("A: ") + sheets.MAX_CELL
    assert reading.cuts == [
        "cells cut in sheet 'Data' at 32,767 characters (the most a cell holds)",
        "rows cut in sheet 'Data' after 1,024 filled cells",
    ]


def test_json_leaf_paths_are_capped_so_text_grows_with_the_file(tmp_path: Path) -> None:
    """Long keys nested deep: each leaf's path keeps only its end, so the text stays near the file's size."""
    from ingest.loaders.data import PATH_CHARS

    path = tmp_path / "paths.json"
    path.write_bytes(hostile.json_paths(depth=39, key=500, leaves=500))
    [doc] = load(path, path.read_bytes())
    leaves = [line for line in doc.page_content.splitlines() if ": " in line]
    assert len(leaves) == 500
    assert all(len(line.partition(": ")[0]) <= PATH_CHARS for line in leaves)
    assert leaves[0].endswith("kk.leaf0: 0") and leaves[0].startswith("…")
    assert len(doc.page_content) < path.stat().st_size + len(leaves) * (PATH_CHARS + 10)  # not 500 x 39 keys


# --------------------------------------------------------------------------------- workers and limits


def test_nested_forms_pdf_render_is_stopped_and_the_folder_goes_on(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    """The 2 KB PDF of nested forms (no text, so its page is rendered for OCR): its worker hits the memory limit
    in seconds and the file is one line; the other file is ingested."""
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "forms.pdf").write_bytes(hostile.nested_forms_pdf())
    (folder / "notes.md").write_text("# Notes\n\nThe harbour closes at dusk.\n")
    start = time.monotonic()
    outcomes = _ingest(embedded_kb, folder, ocr="tesseract", read_memory_mb=1024, read_timeout_s=30)
    assert time.monotonic() - start < 90
    forms = outcomes["forms.pdf"]
    assert forms.status == "failed" and "\n" not in forms.message, forms  # type: ignore[attr-defined]
    assert "1024 MB" in forms.message or "took longer" in forms.message  # type: ignore[attr-defined]
    assert outcomes["notes.md"].status == "added"  # type: ignore[attr-defined]


def test_a_file_past_its_time_is_stopped_and_read_again_next_time(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    from tests.support.files import write_xlsx

    slow = write_xlsx(tmp_path / "slow.xlsx", {"Rows": [[f"r{n}", n, "x" * 20] for n in range(20_000)]})
    outcome = _ingest(embedded_kb, slow, read_timeout_s=0.3)["slow.xlsx"]
    assert outcome.status == "failed" and outcome.retry, outcome  # type: ignore[attr-defined]
    assert "took longer than" in outcome.message and "KBAGENT_READ_TIMEOUT_S" in outcome.message  # type: ignore[attr-defined]
    again = _ingest(embedded_kb, slow, read_timeout_s=0.3)["slow.xlsx"]
    assert again.status == "failed"  # read again (not remembered as done), and stopped again


def test_a_file_needing_more_memory_than_its_worker_has_is_one_line(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    path = tmp_path / "big.json"
    path.write_text("[" + ",".join(["[]"] * 10_000_000) + "]")  # 30 MB: ten million lists, over 600 MB parsed
    outcome = _ingest(embedded_kb, path, read_memory_mb=600, max_text_mb=SMALL)["big.json"]
    assert outcome.status == "failed", outcome  # type: ignore[attr-defined]
    assert "600 MB" in outcome.message and "KBAGENT_READ_MEMORY_MB" in outcome.message  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------- pages


def test_pages_past_the_cap_are_noted_and_the_file_is_not_read_again(
    tmp_path: Path, embedded_kb: KnowledgeBase
) -> None:
    path = write_pdf(tmp_path / "long.pdf", [f"Page {n} of the tide tables." for n in range(1, 31)])
    outcome = _ingest(embedded_kb, path, max_pages=10)["long.pdf"]
    assert outcome.status == "added"  # type: ignore[attr-defined]
    assert outcome.notes == ["pages 11–30 not read: the limit is 10 (KBAGENT_MAX_PAGES)"]  # type: ignore[attr-defined]
    assert _ingest(embedded_kb, path, max_pages=10)["long.pdf"].status == "unchanged"  # type: ignore[attr-defined]
    path.write_bytes(path.read_bytes() + b"\n% changed\n")
    assert _ingest(embedded_kb, path, max_pages=10)["long.pdf"].status == "updated"  # type: ignore[attr-defined]


def test_tiff_frames_past_the_cap_are_noted(tmp_path: Path) -> None:
    from ingest.text.ocr import PageOcr
    from ingest.text.reading import Reading

    path = tmp_path / "frames.tif"
    path.write_bytes(hostile.tiff_frames(500))
    reading = Reading(ocr=PageOcr(), max_pages=20)  # OCR off: each frame read is a note, none rendered
    load(path, path.read_bytes(), reading)
    assert reading.cuts == ["pages 21–500 not read: the limit is 20 (KBAGENT_MAX_PAGES)"]
    assert len(reading.ocr.off) == 20


def test_ocr_time_budget_leaves_pages_unread_with_a_note(tmp_path: Path, embedded_kb: KnowledgeBase) -> None:
    from tests.support.scans import scanned_page, write_scanned_pdf

    pages = [scanned_page(f"Tide table page {n}", width=600, height=300, size=30) for n in range(1, 4)]
    path = write_scanned_pdf(tmp_path / "scan.pdf", pages)
    outcome = _ingest(embedded_kb, path, ocr="tesseract", ocr_budget_s=0.001)["scan.pdf"]
    assert outcome.status == "added" and outcome.ocr_pages == 1, outcome  # type: ignore[attr-defined]
    assert outcome.notes == [  # type: ignore[attr-defined]
        "pages 2, 3 not read: the OCR time per file (0.001 s) was spent (KBAGENT_OCR_BUDGET_S)"
    ]
    assert _ingest(embedded_kb, path, ocr="tesseract", ocr_budget_s=0.001)["scan.pdf"].status == "unchanged"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- a watched folder's failures


def test_a_watched_folder_does_not_read_a_failing_file_on_every_event(
    tmp_path: Path, embedded_kb: KnowledgeBase
) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    (folder / "notes.md").write_text("# Notes\n\nTide at six.\n")
    watcher = FolderWatcher(build_ingestor(IngestConfig(), embedded_kb), [folder])
    [first] = watcher.apply([folder])
    assert [o.status for o in first.report.outcomes if o.source.endswith("broken.pdf")] == ["failed"]  # type: ignore[union-attr]
    (folder / "more.md").write_text("# More\n\nA second note.\n")
    [second] = watcher.apply([folder])  # a folder event: everything under it is looked at
    sources = [Path(o.source).name for o in second.report.outcomes]  # type: ignore[union-attr]
    assert "broken.pdf" not in sources and "more.md" in sources
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 60)  # its bytes change: read again
    [third] = watcher.apply([folder / "broken.pdf"])
    assert [o.status for o in third.report.outcomes] == ["failed"]  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- library errors and noise


def test_corrupt_xls_is_one_clear_line_not_a_bare_assertion(tmp_path: Path) -> None:
    """A .xls mutated at one byte makes xlrd raise an AssertionError with no message."""
    from ingest.loaders import LoadError

    path = tmp_path / "corrupt.xls"
    path.write_bytes(_xls_that_trips_an_assertion(tmp_path))
    with pytest.raises(LoadError, match=r"^corrupt or not a \.xls file \(AssertionError\)$"):
        load(path, path.read_bytes())


def _xls_that_trips_an_assertion(tmp_path: Path) -> bytes:
    """The first one-byte change of a small .xls (found by search, checked here) that xlrd asserts on."""
    import xlrd

    from tests.support.files import write_xls

    seed = write_xls(tmp_path / "seed.xls", {"Tides": [["station", "high"], ["Kiel", "06:12"]]}).read_bytes()
    for at in range(512, len(seed)):
        for value in (0x00, 0xFF, 0x7F):
            data = bytearray(seed)
            data[at] = value
            try:
                xlrd.open_workbook(file_contents=bytes(data), on_demand=True, logfile=io.StringIO())
            except AssertionError:
                return bytes(data)
            except Exception:  # other errors are not what this test wants
                continue
    pytest.fail("no one-byte change of the .xls makes xlrd assert")


@pytest.mark.slow
def test_library_warnings_stay_off_the_terminal(tmp_path: Path) -> None:
    """openpyxl warns "Workbook contains no default style" for a workbook without styles: not on the
    user's terminal (it goes to the log)."""
    from tests.support.cli import kbagent

    folder = tmp_path / "kb"
    folder.mkdir()
    row = b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    (folder / "plain.xlsx").write_bytes(hostile._xlsx(row, ["tide"], empty_styles=True))
    run = kbagent("ingest", str(folder), "--json", data=tmp_path / "data", env={"KBAGENT_READ_WORKERS": "0"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["added"] == 1
    assert "default style" not in run.stderr and "Warning" not in run.stderr, run.stderr


# ----------------------------------------------------------------------------------------- Ctrl+C


@pytest.mark.slow
def test_ctrl_c_stops_an_ingest_within_seconds_while_a_page_renders(tmp_path: Path) -> None:
    """Ctrl+C while a worker renders the nested-forms PDF: the ingest ends within seconds, with no traceback,
    and leaves no worker (or Tesseract) behind."""
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "forms.pdf").write_bytes(hostile.nested_forms_pdf())
    env = {
        **os.environ,
        "KBAGENT_DATA_DIR": str(tmp_path / "data"),
        "KBAGENT_OCR": "tesseract",
        "KBAGENT_READ_MEMORY_MB": "3500",
    }
    limit = 8 * 2**30  # an ingest without workers would render in its own process: not past 8 GB here

    def capped() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.Popen(
        [sys.executable, "-c", "from kbagent.cli import main; main()", "ingest", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        preexec_fn=capped,  # the child runs no threads before exec
    )
    try:
        busy = _wait_for_rendering(proc.pid, deadline=time.monotonic() + 120)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - sent
    finally:
        proc.kill()
    assert stopped_in < 5, f"{stopped_in:.1f} s: {err}"
    assert proc.returncode == 130 and "Traceback" not in err, err
    time.sleep(0.5)
    assert not [pid for pid in busy if _alive(pid)], "a worker outlived the ingest"


def _wait_for_rendering(pid: int, deadline: float) -> list[int]:
    """The processes under `pid` once one of them (or `pid`, reading in its own process) has used 2 s of CPU
    on the file; all of them, to check they are gone later."""
    while time.monotonic() < deadline:
        family = _descendants(pid)
        if any(_cpu_s(p) > 2 for p in family if _is_worker(p)) or _cpu_s(pid) > 12:
            return family
        time.sleep(0.2)
    pytest.fail("the ingest never started reading the file")


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with_children = task / "children"
        if with_children.exists():
            children += [int(c) for c in with_children.read_text().split()]
    return children + [d for c in children for d in _descendants(c)]


def _is_worker(pid: int) -> bool:
    try:
        return b"ingest.workers" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ----------------------------------------------------------------------------------- format versions


def test_a_loader_format_change_rereads_only_that_type(
    tmp_path: Path, embedded_kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import loaders

    (tmp_path / "data.json").write_text(json.dumps({"station": {"name": "Kiel"}}))
    (tmp_path / "notes.md").write_text("# Notes\n\nTide at six.\n")
    first = _ingest(embedded_kb, tmp_path)
    assert {first["data.json"].status, first["notes.md"].status} == {"added"}  # type: ignore[attr-defined]
    monkeypatch.setitem(loaders.FORMATS, ".json", loaders.FORMATS[".json"] + 1)
    again = _ingest(embedded_kb, tmp_path)
    assert again["data.json"].status == "updated" and again["notes.md"].status == "unchanged"  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ helpers' checks


def test_the_nested_forms_pdf_is_as_small_as_the_reviews() -> None:
    assert len(hostile.nested_forms_pdf()) < 3000


def test_the_zip_check_bounds_what_members_may_expand_to(tmp_path: Path) -> None:
    """Declared sizes are what zipfile holds members to; a lie upwards is refused, a lie downwards fails the
    member's check instead of inflating past it."""
    from ingest.loaders import LoadError
    from tests.support.files import write_docx

    good = write_docx(tmp_path / "a.docx", "Tides", {"High": "six"}).read_bytes()
    path = tmp_path / "lying.docx"
    path.write_bytes(hostile.zip_lying_sizes(good))
    with pytest.raises(LoadError, match="zip bomb"):
        load(path, path.read_bytes())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.txt", b"a" * 10_000_000)
    small = hostile.zip_lying_sizes(buffer.getvalue(), factor=0)  # declares 1 byte for 10 MB
    with (
        zipfile.ZipFile(io.BytesIO(small)) as archive,
        archive.open("x.txt") as member,
        pytest.raises(zipfile.BadZipFile, match="CRC"),
    ):
        member.read()


# ------------------------------------------------------------------ a slice of bench/robustness.py


FAST_BOMBS = ("shared-string.xlsx", "column-xfd.xlsx", "json-paths.json", "attachments.eml", "deep.json", "deep.html")


def test_hostile_files_of_every_type_each_end_in_one_line(
    tmp_path: Path, embedded_kb: KnowledgeBase, capfd: pytest.CaptureFixture[str]
) -> None:
    """Bombs and Hypothesis mutations of a valid file of every type: each ends ingested or reported in one
    line, never as a library's bare error, and nothing prints a traceback."""
    import re

    folder = tmp_path / "hostile"
    folder.mkdir()
    bombs = hostile.bombs()
    for name in FAST_BOMBS:
        (folder / f"bomb-{name}").write_bytes(bombs[name])
    seeds = hostile.seeds(tmp_path / "seeds")
    for n, (kind, data) in enumerate(hostile.mutants(seeds, 2 * len(seeds), seed=5)):
        (folder / f"mutant-{n:03d}.{kind}").write_bytes(data)
    start = time.monotonic()
    outcomes = _ingest(embedded_kb, folder, ocr="tesseract", read_timeout_s=10, max_text_mb=SMALL)
    assert time.monotonic() - start < 180  # about 40 s on an idle machine; a hang would take much longer
    assert set(outcomes) == {p.name for p in folder.iterdir()}
    for name, outcome in outcomes.items():
        status, message, notes = outcome.status, outcome.message, outcome.notes  # type: ignore[attr-defined]
        assert status in ("added", "failed", "skipped"), (name, outcome)
        assert "\n" not in message and all("\n" not in note for note in notes), (name, outcome)
        assert not re.match(r"[A-Z]\w*(Error|Exception)\b", message), (name, message)
    assert {o.status for o in outcomes.values()} >= {"added", "failed"}  # type: ignore[attr-defined]
    assert "Traceback" not in capfd.readouterr().err
