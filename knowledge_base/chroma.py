"""The Chroma client and collection, built from settings: embedded on disk, or a `chroma run` server."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from knowledge_base.embeddings import Embedder, KbagentEmbeddingFunction
from knowledge_base.errors import ConfigError

# Recall matters more than build speed for a knowledge base; Chroma's defaults (ef_search 10,
# 16 neighbours) lose recall on larger collections.
HNSW = {"space": "cosine", "ef_construction": 200, "ef_search": 128, "max_neighbors": 32}


def open_client(settings: Any) -> Any:
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"KBAGENT_CHROMA_URL must look like http://host:port, got {settings.chroma_url!r}")
    try:
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    except Exception as exc:
        raise ConfigError(f"no Chroma server answers at {settings.chroma_url} ({exc})") from exc


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
