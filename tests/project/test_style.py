"""The code stays `ruff` clean and `ruff format`ted, typed (`mypy`), and the packages keep their one-way
dependencies (`lint-imports`, with the contracts in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is a test dependency (pip install -e '.[test]')"
    return found


def test_ruff_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_ruff_format_clean() -> None:
    result = subprocess.run([_tool("ruff"), "format", "--check", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_layers_point_one_way() -> None:
    result = subprocess.run([_tool("lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.slow
def test_types_check() -> None:
    result = subprocess.run(
        [_tool("mypy"), "--cache-dir", str(REPO / ".mypy_cache")], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-5000:]


def test_bench_scripts_do_not_shadow_packages() -> None:
    """`python bench/x.py` puts bench/ first on the path: a script named like a package hides that package."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    scripts = {p.stem for p in (REPO / "bench").glob("*.py")}
    assert not packages & scripts, f"bench scripts named like packages: {sorted(packages & scripts)}"
