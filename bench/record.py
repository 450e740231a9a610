"""One way every benchmark saves its figures: `bench/results/NAME.json`, committed, with the command that made
it, when, and on what machine, so each figure the docs quote has its artifact."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent / "results"


def save(name: str, figures: Any, path: Path | None = None) -> Path:
    """Write the figures under `name` with their provenance; returns the file."""
    path = path or FOLDER / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": shlex.join([".venv/bin/python", *sys.argv]),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "load_average_1min": round(os.getloadavg()[0], 1),  # above the CPU count: the CPU was shared
        "figures": figures,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
