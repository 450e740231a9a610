"""Package front doors that load their modules on first use.

Every start reads the settings, whose sections live in `ingest/config.py`, `evaluation/config.py` and the
like; importing those runs their package's `__init__`. A front door that imported every submodule would make
each `kbagent search` import the chunker, the PDF reader and the web fetcher it never uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `name` from `where[name]` (a submodule) when first asked for."""

    def attribute(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return attribute
