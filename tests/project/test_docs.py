"""The docs cannot drift from the code: the reference pages are what the generator writes, every setting has a
description, links and anchors resolve, every quoted figure is in the result file it names, and the examples
marked runnable run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbagent.settings import SECTIONS
from tests.support.paths import REPO, VENV_BIN

DOCS = REPO / "docs"
GENERATED = DOCS / "reference"
PAGES = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]
WRITTEN = [page for page in PAGES if GENERATED not in page.parents]  # the pages people write

RESULT_FILE = re.compile(r"bench/results/[a-z0-9_.-]+\.json")  # NAME.json in prose is no file
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.]*\d)")  # 0.7275, 1.62; not v1.1, Qwen2.5 or 0.1.9
GROUPED = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\w,]*\d)")  # 12,362
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_readme_is_a_short_front_door_that_starts_with_the_set_up_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    ci_command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]  # what CI runs, on a fresh clone
    before_first_section = readme.split("\n## ", 1)[0]
    indented = [line[4:] for line in before_first_section.splitlines() if line.startswith("    ")]
    assert indented[0].startswith("bash scripts/install.sh && ")
    assert indented[1] == ci_command


def test_every_setting_has_a_description() -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in SECTIONS.values()
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not missing, f"give these settings a Field(description=...): {missing}"


def test_reference_pages_are_what_the_code_generates() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "docs_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    settings_page = (GENERATED / "settings.md").read_text()
    assert "`KBAGENT_EMBEDDING_DEVICE`" in settings_page and "`KBAGENT_SEARCH_K`" in settings_page


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def _blocks(text: str) -> Iterator[str]:
    """Markdown blocks outside code fences: a table row, a list item with its continuation lines, a paragraph."""
    block: list[str] = []
    for line in FENCE.sub("", text).splitlines():
        starts = not line.strip() or line.startswith(("|", "#")) or re.match(r"\s*([-*]|\d+\.)\s", line)
        if starts and block:
            yield " ".join(block)
            block = []
        if line.strip():
            block.append(line)
    if block:
        yield " ".join(block)


def _numbers(value: object) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _found(shown: str, values: list[float]) -> bool:
    """`shown` ("0.651", "2.3", "12,362") is one of `values` rounded to the shown digits, or one as a percentage."""
    digits = len(shown.partition(".")[2])
    number = float(shown.replace(",", ""))
    tolerance = 0.5 * 10**-digits + 1e-9
    return any(abs(v - number) <= tolerance or abs(100 * v - number) <= tolerance for v in values)


def _cited_figures() -> Iterator[tuple[Path, str, list[str]]]:
    for page in WRITTEN:
        for block in _blocks(page.read_text()):
            cited = RESULT_FILE.findall(block)
            if cited:
                yield page, block, cited


def test_every_named_result_file_is_committed_with_its_command() -> None:
    named = {name for _, _, cited in _cited_figures() for name in cited}
    named |= {name for page in WRITTEN for name in RESULT_FILE.findall(page.read_text())}
    assert len(named) >= 10
    benchmarks = (DOCS / "benchmarks.md").read_text()
    for name in sorted(named):
        path = REPO / name
        assert path.is_file(), f"{name} is named in the docs but missing"
        command = json.loads(path.read_text()).get("command")
        assert command, f"{name} does not record the command that made it"
        assert command in benchmarks, f"docs/benchmarks.md does not show {name}'s command: {command}"


def test_every_figure_quoted_is_in_the_result_file_it_names() -> None:
    missing = []
    checked = 0
    for page, block, cited in _cited_figures():
        files = [REPO / name for name in cited if (REPO / name).is_file()]
        values = [v for path in files for v in _numbers(json.loads(path.read_text()))]
        prose = re.sub(r"`[^`]*`", " ", block)  # commands, versions and file names are not figures
        for shown in DECIMAL.findall(prose) + GROUPED.findall(prose):
            checked += 1
            if not _found(shown, values):
                missing.append(f"{page.relative_to(REPO)}: {shown} not in {', '.join(cited)}: {block[:160]}")
    assert checked >= 50, "the figures' markup changed: each line quoting a figure names its bench/results file"
    assert not missing, "\n".join(missing)


def test_site_builds_without_warnings(tmp_path: Path) -> None:
    """mkdocs --strict: every page in the navigation, every link and anchor found (mkdocs' own check)."""
    mkdocs = shutil.which("mkdocs", path=str(VENV_BIN)) or shutil.which("mkdocs")
    assert mkdocs, "mkdocs is a test dependency (pip install -e '.[test]')"
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "settings.html").is_file()


def _runnable(page: Path) -> list[tuple[str, str]]:
    """(language, code) of the page's fenced blocks marked runnable (```bash runnable, ```python runnable)."""
    found = []
    for info, code in FENCE.findall(page.read_text()):
        words = info.split()
        if "runnable" in words:
            found.append((words[0], code))
    return found


RUNNABLE = [page for page in WRITTEN if _runnable(page)]


def test_examples_are_marked_runnable_where_they_can_run() -> None:
    blocks = [block for page in RUNNABLE for block in _runnable(page)]
    assert len(blocks) >= 8
    assert {language for language, _ in blocks} == {"bash", "python"}


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(REPO)) for p in RUNNABLE])
def test_runnable_examples_run(page: Path, tmp_path: Path) -> None:
    """A page's runnable blocks in order, from the repository root, in one fresh data dir, offline."""
    env = {
        **os.environ,
        "KBAGENT_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for language, code in _runnable(page):
        command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        output = result.stdout[-2000:] + result.stderr[-3000:]
        assert result.returncode == 0, f"{language} example failed:\n{code}\n{output}"
