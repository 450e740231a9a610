"""Which engine embeds ingest batches on this CPU: measured, not guessed from its flags.

A CPU flag says which instructions exist, not which engine is faster: bfloat16 was 2.4x faster than float32 on
a CPU with AMX and slower on one with only AVX512-BF16. So the first large job on a machine times every engine
on the same texts (rounds interleaved, so a drift in the machine's speed hits them alike), keeps the fastest
whose vectors agree with float32's (cosine >= `AGREEMENT` for every text), and the choice is cached beside
the store with the CPU's identity: a new CPU, core count or engine version measures again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from knowledge_base.embeddings import Vectors

AGREEMENT = 0.999  # lowest cosine to float32's vector, over every text of the sample
SAMPLE_CHUNKS = 32  # texts timed per engine and round, spread over the job's lengths
ROUNDS = 2  # the first also gives the vectors compared


class Engine(Protocol):
    def load(self) -> None: ...
    def encode(self, texts: list[str]) -> Vectors: ...


@dataclass
class Calibration:
    chosen: str
    rates: dict[str, float]  # chunks/s on the sample, the best round of each engine
    agreement: dict[str, float]  # lowest cosine to the reference's vectors
    cpu: dict[str, str | int | None] = field(default_factory=dict)
    sample_chunks: int = 0
    seconds: float = 0.0
    measured_at: str = ""

    def describe(self) -> str:
        others = ", ".join(
            f"{name} {rate:.0f}" + ("" if self.agreement[name] >= AGREEMENT else " (vectors disagree)")
            for name, rate in sorted(self.rates.items(), key=lambda kv: -kv[1])
        )
        return f"{self.chosen} (measured chunks/s: {others})"


def cpu_identity() -> dict[str, str | int | None]:
    """What the measured speeds depend on: the CPU model and its flags, the cores this process may use, and
    the engines' versions. (Its imports wait for it: not on a search's path.)"""
    import platform
    from importlib import metadata

    name, flags = platform.processor(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not name.strip():
                name = value.strip()
            if key.strip() in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = {}
    for package in ("onnxruntime", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = ""
    return {
        "machine": platform.machine(),
        "model": name.strip(),
        "flags": hashlib.sha1(flags.encode()).hexdigest()[:16],
        "cores": cores,
        **versions,
    }


def has_flag(*names: str) -> bool:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return any(n in flags for n in names)


def sample_of(texts: list[str], size: int = SAMPLE_CHUNKS) -> list[str]:
    """`size` texts spread evenly over the job's lengths, so the sample pads as the job does."""
    ordered = sorted(texts, key=len)
    if len(ordered) <= size:
        return ordered
    step = len(ordered) / size
    return [ordered[int(i * step)] for i in range(size)]


def calibrate(engines: Mapping[str, Engine], reference: str, texts: list[str]) -> Calibration:
    """Time every engine on a sample of `texts` and choose the fastest that agrees with `reference`."""
    import numpy as np

    start = time.perf_counter()
    sample = sample_of(texts)
    for engine in engines.values():
        engine.load()  # exported the first time: not what is measured
    agreement: dict[str, float] = {}
    best: dict[str, float] = {}
    want = None
    for round_ in range(ROUNDS):
        for name in sorted(engines, key=lambda n: n != reference):  # the reference first: the others match it
            began = time.perf_counter()
            got = np.asarray(engines[name].encode(sample))
            seconds = time.perf_counter() - began
            best[name] = min(best.get(name, seconds), seconds)
            if round_ == 0:
                want = got if want is None else want
                agreement[name] = round(float((got * want).sum(axis=1).min()), 6)
    rates = {name: round(len(sample) / max(seconds, 1e-9), 1) for name, seconds in best.items()}
    agreeing = [name for name in engines if agreement[name] >= AGREEMENT]
    chosen = max(agreeing or [reference], key=lambda name: rates[name])
    return Calibration(
        chosen,
        rates,
        agreement,
        cpu_identity(),
        len(sample),
        round(time.perf_counter() - start, 2),
        time.strftime("%Y-%m-%d %H:%M:%S"),
    )


def describe_cached(path: Path) -> str:
    """What `kbagent models` says about the embedding engine ingest uses here."""
    try:
        calibration = Calibration(**json.loads(path.read_text()))
    except FileNotFoundError:
        return "not measured yet: the first ingest of 128 chunks or more measures the engines (a few seconds)"
    except (OSError, ValueError, TypeError):
        return "its measurement is unreadable: the next large ingest measures again"
    stale = "" if calibration.cpu == cpu_identity() else " (on another CPU: the next large ingest measures again)"
    return f"{calibration.describe()}, measured {calibration.measured_at}{stale}"


class CalibrationCache:
    """The calibration of this CPU, in a JSON file in the data dir (None: kept in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self, engines: list[str]) -> Calibration | None:
        """The cached calibration, unless the CPU or the engines to choose from changed since."""
        if self.path is None or not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
            calibration = Calibration(**data)
        except (OSError, ValueError, TypeError):
            return None
        if calibration.cpu != cpu_identity() or sorted(calibration.rates) != sorted(engines):
            return None
        return calibration

    def save(self, calibration: Calibration) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(asdict(calibration), indent=2))
        partial.replace(self.path)
