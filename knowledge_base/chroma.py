"""The Chroma client and collection, built from settings: embedded on disk, or a `chroma run` server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kbagent.errors import ConfigError
from knowledge_base.config import StoreConfig
from knowledge_base.embeddings import Embedder, KbagentEmbeddingFunction

# Recall matters more than build speed for a knowledge base; Chroma's defaults (ef_search 10,
# 16 neighbours) lose recall on larger collections.
HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 128, "max_neighbors": 32}


def open_client(store: StoreConfig) -> Any:
    """The embedded client on disk, or a client of the Chroma server at `store.chroma_url`."""
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not store.chroma_url:
        if not store.chroma_path.exists():
            initialise_store(store.chroma_path)
        return chromadb.PersistentClient(path=str(store.chroma_path), settings=chroma_settings)
    url = urlparse(store.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"KBAGENT_CHROMA_URL must look like http://host:port, got {store.chroma_url!r}")
    try:
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    except Exception as exc:
        raise ConfigError(f"no Chroma server answers at {store.chroma_url} ({exc})") from exc


def initialise_store(path: Path) -> None:
    """Create a new embedded store beside its final place, then rename it there.

    Chroma's first start creates its schema in several steps; a process killed in between leaves a store
    that never opens again ("table collections already exists"). Built in a child process (which releases
    every file when it exits) and renamed, a new store is either complete or absent.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f"{path.name}.init-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    building = path.with_name(f"{path.name}.init-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    script = (
        "import sys, chromadb; from chromadb.config import Settings; "
        "chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False)).heartbeat()"
    )
    done = subprocess.run([sys.executable, "-c", script, str(building)], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ConfigError(f"could not create the Chroma store at {path}: {last}")
    try:
        building.rename(path)
    except OSError:  # another process created it first
        shutil.rmtree(building, ignore_errors=True)


def open_collection(client: Any, name: str, embedder: Embedder) -> Any:
    collection = client.get_or_create_collection(
        name,
        embedding_function=KbagentEmbeddingFunction(embedder),
        configuration={"hnsw": HNSW},
        metadata={"embedding_model": embedder.model_name},
    )
    stored = (collection.metadata or {}).get("embedding_model")
    if stored and stored != embedder.model_name:
        raise ConfigError(
            f"collection {name!r} was built with embedding model {stored!r}, not {embedder.model_name!r}; "
            "set KBAGENT_COLLECTION to a new name or KBAGENT_EMBEDDING_MODEL back"
        )
    return collection


def delete_collection(client: Any, name: str) -> None:
    """Deletes a collection; one already gone is fine (a deletion finished again)."""
    from chromadb.errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        client.delete_collection(name)
