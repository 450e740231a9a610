"""The one settings object: read from `KBAGENT_*` variables and `.env`, built once at the edge, passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KBAGENT_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the store and the source records live.")
    collection: str = Field("kbagent", description="Chroma collection name.")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="'all-MiniLM-L6-v2' (shipped offline), any sentence-transformers name or path, "
        "or 'openai:<model>'.",
    )
    embedding_backend: Literal["auto", "onnx", "torch"] = Field(
        "auto",
        description="auto: the shipped MiniLM embeds queries through onnxruntime (fast start) and batches through "
        "a TorchScript export; torch: sentence-transformers.",
    )
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Ingest precision for torch models; auto: bfloat16 on CPUs with AMX/AVX512-BF16."
    )
    embedding_batch_size: int = Field(32, ge=1, le=1024)
    write_batch_chunks: int = Field(
        1024, ge=1, le=100_000, description="Chunks gathered before a write: full embedding batches, fewer commits."
    )
    embedding_device: str = Field("cpu", description="torch device for local embedding models.")
    chunk_size: int = Field(800, ge=100, le=20000, description="Characters per chunk.")
    chunk_overlap: int = Field(80, ge=0, description="Characters shared by neighbouring chunks.")
    chroma_url: str = Field("", description="Empty: embedded store on disk. http://host:port: a Chroma server.")
    chroma_texts: bool | None = Field(
        None,
        description="Also store chunk texts in Chroma. Default: only with a Chroma server, whose other clients "
        "read them there; the embedded store keeps them in sources.sqlite3 alone (Chroma's writes take half the time).",
    )
    search_k: int = Field(10, ge=1, le=200)
    search_mode: Literal["hybrid", "dense", "keyword"] = Field("hybrid", description="Default retrieval mode.")
    search_mmr: bool = Field(False, description="Diversify results with maximal marginal relevance.")
    search_min_score: float | None = Field(
        None, description="Drop chunks whose cosine similarity (BM25 score in keyword mode) is below this."
    )
    hybrid_dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in fusion.")
    hybrid_keyword_weight: float = Field(1.0, ge=0, description="Weight of the keyword ranking in fusion.")
    keyword_max_scored_rows: int = Field(
        30_000,
        ge=0,
        description="Keyword search scores at most about this many rows, leaving out a query's commonest words "
        "on large stores (latency); 0 = no limit.",
    )
    reranker: str = Field("", description="Cross-encoder name or local path; empty = no re-ranking.")
    query_rewrite: bool = Field(False, description="Rewrite follow-up questions into stand-alone queries (LLM).")
    rerank_top_n: int = Field(30, ge=1, le=500, description="Candidates the re-ranker scores.")
    max_file_mb: float = Field(100.0, gt=0, description="Larger files are skipped with a message.")
    max_text_mb: float = Field(5.0, gt=0, description="Files with more extracted text (M characters) are skipped.")
    allow_hosts: str = Field("", description="Hosts, host:port or CIDRs the web fetcher may reach despite the guard.")
    fetch_timeout_s: float = Field(20.0, gt=0, le=600, description="Time limit for one page, redirects included.")
    fetch_max_mb: float = Field(10.0, gt=0, description="Larger web pages are refused.")
    fetch_max_redirects: int = Field(5, ge=0, le=30, description="Redirect hops followed (each one checked).")
    crawl_delay_s: float = Field(1.0, ge=0, le=60, description="Pause between requests to one site when crawling.")
    browser_path: str = Field("", description="Chromium for JavaScript pages; empty = Playwright's, else system.")
    user_agent: str = Field("kbagent/0.1 (+offline knowledge-base ingester)", description="Sent with web requests.")

    # The agent's model: provider:model, or empty for the embedded default (see agent/models.py).
    model: str = Field(
        "",
        description="openai:NAME, anthropic:NAME, gemini:NAME, deepseek:NAME, ollama:NAME, "
        "hf:ID-OR-PATH, gguf:PATH; empty = the embedded GGUF model.",
    )
    tool_calling: Literal["auto", "on", "off"] = Field(
        "auto", description="Let the model call tools (auto: on for API models, off for small local ones)."
    )
    temperature: float = Field(0.2, ge=0, le=2)
    max_tokens: int = Field(512, ge=16, le=32768, description="Longest answer, in tokens.")
    context_tokens: int = Field(4096, ge=512, le=131072, description="Context window for local models.")
    threads: int = Field(0, ge=0, description="CPU threads for local models; 0 = all cores.")
    models_dir: Path | None = Field(None, description="Where the embedded model file is joined (DATA_DIR/models).")
    agent_k: int = Field(5, ge=1, le=20, description="Passages the agent retrieves per search.")
    agent_context_chars: int = Field(
        1000,
        ge=200,
        le=100_000,
        description="Passage text a local model reads per answer: each passage's sentences closest to the "
        "question, this many characters in all (prompt reading is the slow part on a CPU).",
    )
    agent_min_similarity: float = Field(
        0.3, ge=-1, le=1, description="Passages less similar to the question are not shown to the model."
    )

    # The web app (`python app.py`, `kbagent serve`).
    host: str = Field("127.0.0.1", description="Address the app listens on; beyond localhost, set auth.")
    port: int = Field(7860, ge=1, le=65535, description="Port the app listens on.")
    auth: SecretStr | None = Field(None, description="user:password turns the app's login on.")

    # Provider keys and hosts keep their usual names (no prefix).
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    google_api_key: SecretStr | None = Field(None, validation_alias="GOOGLE_API_KEY")
    deepseek_api_key: SecretStr | None = Field(None, validation_alias="DEEPSEEK_API_KEY")
    hf_token: SecretStr | None = Field(None, validation_alias="HF_TOKEN")
    ollama_host: str = Field("http://127.0.0.1:11434", validation_alias="OLLAMA_HOST")

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_size", 800)
        if v >= size:
            raise ValueError(f"chunk_overlap ({v}) must be smaller than chunk_size ({size})")
        return v

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def records_path(self) -> Path:
        return self.data_dir / "sources.sqlite3"

    @property
    def threads_path(self) -> Path:
        return self.data_dir / "threads.sqlite3"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "ingest.lock"

    def masked(self) -> dict[str, Any]:
        """Effective settings as printable values, secrets masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "*** (set)" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out
