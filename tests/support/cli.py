"""The `kbagent` command as a user runs it: a real subprocess, the data dir in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.paths import VENV_BIN


def kbagent(*args: str, data: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = VENV_BIN / "kbagent"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "kbagent.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=data.parent,
        env={**os.environ, "KBAGENT_DATA_DIR": str(data), **(env or {})},
    )
