"""What torch must be told before it first runs, for every local embedding engine."""

from __future__ import annotations

import os


def cap_kernel_cache() -> None:
    """oneDNN keeps a compiled kernel for every (batch, length) shape it meets, up to 1,024 of them: with
    length-sorted batches that is hundreds of MB for no speed (bench/ingest_scifact.py measures the peak).
    Read when torch first runs a oneDNN kernel, so it has to be set before that."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")
