"""Package front doors that load their modules on first use.

Every start reads the settings, whose sections live in `ingest/config.py`, `evaluation/config.py` and the
like; importing those runs their package's `__init__`. A front door that imported every submodule would make
each `kbagent search` import the chunker, the PDF reader and the web fetcher it never uses.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `name` from `where[name]` (a submodule) when first asked for."""

    def attribute(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return attribute


class Soon(Generic[T]):
    """A value built on a daemon thread while the caller does other work (a one-shot `kbagent ask` reads the
    chat model from disk while it imports the rest); `result` waits for it in short steps, so Ctrl+C still
    stops the process at once, and raises what building it raised."""

    def __init__(self, build: Callable[[], T], name: str) -> None:
        self._build = build
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._build()
        except BaseException as exc:  # handed to whoever waits for the value
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> T:
        while not self._done.wait(0.2):
            pass
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
