"""The code stays `ruff` clean and the packages keep their one-way dependencies."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LAYERS = {
    "knowledge_base": set(),
    "tools": {"knowledge_base", "ingest"},
    "ingest": {"knowledge_base"},
    "evaluation": {"knowledge_base", "ingest"},
    "agent": {"tools", "knowledge_base"},
    "ui": {"kbagent", "agent", "tools", "ingest", "knowledge_base", "evaluation"},
}


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency"
    result = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_lower_packages_import_nothing_above_them() -> None:
    ours = {"kbagent", "ingest", "knowledge_base", "tools", "agent", "app", "ui"}
    for package, allowed in LAYERS.items():
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    assert top not in ours or top == package or top in allowed, f"{path}: imports {name}"
