"""The models `kbagent models pull NAME` offers: general instruction-tuned GGUFs of 1.5B–8B parameters, from their
publishers' own GGUF repos (or bartowski's, where the publisher ships none in one file), and which fit this machine.

No sha256 is written here unless it was read from the file itself: `pull` checks the file against the hub's own
LFS sha256 (an LFS file's ETag is its sha256), so a hash entered here only pins a file the hub can't change.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogModel:
    name: str
    repo: str
    filename: str
    size_gb: float  # the file, roughly (the hub's own size is what the download checks)
    memory_gb: float  # the file plus a 4096-token context and llama.cpp's working memory
    description: str
    sha256: str | None = None  # None: the hub's LFS sha256 is the reference

    @property
    def spec(self) -> str:
        return f"{self.repo}/{self.filename}"


CATALOG = (
    CatalogModel(
        "qwen2.5-1.5b",
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        1.1,
        2.0,
        "Qwen2.5 1.5B Instruct Q4_K_M: the default's general sibling; fast on any CPU; calls tools",
    ),
    CatalogModel(
        "qwen2.5-3b",
        "Qwen/Qwen2.5-3B-Instruct-GGUF",
        "qwen2.5-3b-instruct-q4_k_m.gguf",
        2.1,
        3.2,
        "Qwen2.5 3B Instruct Q4_K_M: clearly better answers, about twice the default's time; calls tools",
    ),
    CatalogModel(
        "qwen2.5-7b",
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "Qwen2.5-7B-Instruct-Q4_K_M.gguf",
        4.7,
        6.0,
        "Qwen2.5 7B Instruct Q4_K_M (one file; Qwen's own repo splits it): best here, wants a GPU or many cores",
    ),
    CatalogModel(
        "llama3.2-3b",
        "bartowski/Llama-3.2-3B-Instruct-GGUF",
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        2.0,
        3.0,
        "Llama 3.2 3B Instruct Q4_K_M (Llama 3.2 community licence): strong English answers",
    ),
    CatalogModel(
        "llama3.1-8b",
        "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
        "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
        4.9,
        6.5,
        "Llama 3.1 8B Instruct Q4_K_M (Llama 3.1 community licence): wants a GPU or many cores",
    ),
    CatalogModel(
        "phi3-mini",
        "microsoft/Phi-3-mini-4k-instruct-gguf",
        "Phi-3-mini-4k-instruct-q4.gguf",
        2.4,
        4.0,
        "Phi-3 mini 4k Instruct (3.8B, Microsoft's own GGUF, MIT): good reasoning, 4k context",
    ),
    CatalogModel(
        "gemma2-2b",
        "bartowski/gemma-2-2b-it-GGUF",
        "gemma-2-2b-it-Q4_K_M.gguf",
        1.7,
        3.0,
        "Gemma 2 2B Instruct Q4_K_M (Gemma terms of use): fluent short answers",
    ),
)


def find(name: str) -> CatalogModel | None:
    return next((m for m in CATALOG if m.name == name.strip().lower()), None)


@dataclass(frozen=True)
class Machine:
    ram_gb: float
    gpu_gb: float | None  # the first CUDA device's memory; None without one (or without torch)

    def fit(self, model: CatalogModel) -> str:
        """'gpu', 'ram' or '' (doesn't fit): where the model's memory fits, GPU first."""
        if self.gpu_gb is not None and model.memory_gb <= self.gpu_gb:
            return "gpu"
        return "ram" if model.memory_gb <= self.ram_gb else ""


def this_machine() -> Machine:
    """Physical memory from the OS; a GPU only as torch sees it (the one GPU library the project installs)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_properties(0).total_memory / 2**30
    return Machine(ram, gpu)
