"""Where the tests find the repository, the sample knowledge base and the virtual environment's commands."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "harborview"
VENV_BIN = Path(sys.executable).parent
