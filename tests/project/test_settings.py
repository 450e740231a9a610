"""Typed settings sections keep every flat `KBAGENT_*` name users already have working, from the environment,
from `.env` and as keyword arguments, and a mistyped or bad value is refused with the variable's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from kbagent.errors import ConfigError
from kbagent.settings import FLAT, Settings, env_name, load_settings

# Every variable the flat settings object read before the sections, with a value that is not its default,
# and where it lands now. (KBAGENT_QUERY_REWRITE went with the unused query rewriter.)
EXPECTED: dict[str, tuple[str, str, Any]] = {
    "KBAGENT_DATA_DIR": ("/tmp/kb-elsewhere", "store.data_dir", Path("/tmp/kb-elsewhere")),
    "KBAGENT_COLLECTION": ("notes", "store.collection", "notes"),
    "KBAGENT_KB": ("handbook", "store.kb", "handbook"),
    "KBAGENT_CHROMA_URL": ("http://127.0.0.1:8001", "store.chroma_url", "http://127.0.0.1:8001"),
    "KBAGENT_CHROMA_TEXTS": ("true", "store.chroma_texts", True),
    "KBAGENT_MODELS_DIR": ("/tmp/kb-models", "store.models_dir", Path("/tmp/kb-models")),
    "KBAGENT_DATABASE_URL": ("postgresql://kb@db:5432/kb", "store.database_url", "postgresql://kb@db:5432/kb"),
    "KBAGENT_EMBEDDING_MODEL": ("openai:text-embedding-3-small", "embedding.model", "openai:text-embedding-3-small"),
    "KBAGENT_EMBEDDING_BACKEND": ("torch", "embedding.backend", "torch"),
    "KBAGENT_EMBEDDING_DTYPE": ("bfloat16", "embedding.dtype", "bfloat16"),
    "KBAGENT_EMBEDDING_BATCH_SIZE": ("64", "embedding.batch_size", 64),
    "KBAGENT_EMBEDDING_DEVICE": ("cuda", "embedding.device", "cuda"),
    "KBAGENT_SEARCH_K": ("7", "search.k", 7),
    "KBAGENT_SEARCH_MODE": ("keyword", "search.mode", "keyword"),
    "KBAGENT_SEARCH_MMR": ("1", "search.mmr", True),
    "KBAGENT_SEARCH_MIN_SCORE": ("0.25", "search.min_score", 0.25),
    "KBAGENT_HYBRID_DENSE_WEIGHT": ("0.5", "search.dense_weight", 0.5),
    "KBAGENT_HYBRID_KEYWORD_WEIGHT": ("2", "search.keyword_weight", 2.0),
    "KBAGENT_KEYWORD_MAX_SCORED_ROWS": ("0", "search.keyword_max_scored_rows", 0),
    "KBAGENT_RERANKER": ("/models/cross-encoder", "search.reranker", "/models/cross-encoder"),
    "KBAGENT_RERANK_TOP_N": ("12", "search.rerank_top_n", 12),
    "KBAGENT_CHUNK_SIZE": ("500", "ingest.chunk_size", 500),
    "KBAGENT_CHUNK_OVERLAP": ("50", "ingest.chunk_overlap", 50),
    "KBAGENT_MAX_FILE_MB": ("3.5", "ingest.max_file_mb", 3.5),
    "KBAGENT_MAX_TEXT_MB": ("2", "ingest.max_text_mb", 2.0),
    "KBAGENT_WRITE_BATCH_CHUNKS": ("256", "ingest.write_batch_chunks", 256),
    "KBAGENT_WATCH_DEBOUNCE_MS": ("500", "ingest.watch_debounce_ms", 500),
    "KBAGENT_OCR": ("off", "ingest.ocr", "off"),
    "KBAGENT_OCR_TIMEOUT_S": ("20", "ingest.ocr_timeout_s", 20.0),
    "KBAGENT_OCR_MAX_MEGAPIXELS": ("80", "ingest.ocr_max_megapixels", 80.0),
    "KBAGENT_OCR_BUDGET_S": ("120", "ingest.ocr_budget_s", 120.0),
    "KBAGENT_MAX_PAGES": ("500", "ingest.max_pages", 500),
    "KBAGENT_READ_WORKERS": ("1", "ingest.read_workers", 1),
    "KBAGENT_READ_MEMORY_MB": ("2048", "ingest.read_memory_mb", 2048),
    "KBAGENT_READ_TIMEOUT_S": ("30", "ingest.read_timeout_s", 30.0),
    "KBAGENT_ALLOW_HOSTS": ("wiki.corp,10.20.0.0/16", "web.allow_hosts", "wiki.corp,10.20.0.0/16"),
    "KBAGENT_FETCH_TIMEOUT_S": ("9", "web.timeout_s", 9.0),
    "KBAGENT_FETCH_MAX_MB": ("4", "web.max_mb", 4.0),
    "KBAGENT_FETCH_MAX_REDIRECTS": ("2", "web.max_redirects", 2),
    "KBAGENT_CRAWL_DELAY_S": ("0.5", "web.crawl_delay_s", 0.5),
    "KBAGENT_BROWSER_PATH": ("/usr/bin/chromium", "web.browser_path", "/usr/bin/chromium"),
    "KBAGENT_USER_AGENT": ("probe/1.0", "web.user_agent", "probe/1.0"),
    "KBAGENT_MODEL": ("ollama:qwen2.5:7b", "agent.model", "ollama:qwen2.5:7b"),
    "KBAGENT_TOOL_CALLING": ("off", "agent.tool_calling", "off"),
    "KBAGENT_TEMPERATURE": ("0.3", "agent.temperature", 0.3),
    "KBAGENT_REPEAT_PENALTY": ("1.0", "agent.repeat_penalty", 1.0),
    "KBAGENT_MAX_TOKENS": ("256", "agent.max_tokens", 256),
    "KBAGENT_CONTEXT_TOKENS": ("8192", "agent.context_tokens", 8192),
    "KBAGENT_THREADS": ("2", "agent.cpu_threads", 2),
    "KBAGENT_INSTRUCTIONS": ("Answer in French.", "agent.instructions", "Answer in French."),
    "KBAGENT_AGENT_K": ("3", "agent.k", 3),
    "KBAGENT_AGENT_CONTEXT_CHARS": ("1500", "agent.context_chars", 1500),
    "KBAGENT_AGENT_MIN_SIMILARITY": ("0.1", "agent.min_similarity", 0.1),
    "KBAGENT_LOCAL_TOOL_STEPS": ("2", "agent.local_tool_steps", 2),
    "KBAGENT_PRICES": ('{"openai:gpt-x": [1, 2]}', "eval.prices", {"openai:gpt-x": (1.0, 2.0)}),
    "KBAGENT_HOST": ("0.0.0.0", "app.host", "0.0.0.0"),
    "KBAGENT_PORT": ("8123", "app.port", 8123),
    "KBAGENT_AUTH": ("ada:pw", "app.auth", "ada:pw"),
    "KBAGENT_APP_FREE_MODEL_PATHS": ("true", "app.free_model_paths", True),
    "KBAGENT_WATCH_ROOTS": ("/srv/docs,/srv/wiki", "app.watch_roots", "/srv/docs,/srv/wiki"),
    "KBAGENT_MCP": ("on", "app.mcp", True),
    "KBAGENT_MCP_WRITES": ("on", "app.mcp_writes", True),
    "KBAGENT_OPENAI_API": ("on", "app.openai_api", True),
    "KBAGENT_ALLOWED_HOSTS": ("kb.lan,10.0.0.7", "app.allowed_hosts", "kb.lan,10.0.0.7"),
    "KBAGENT_ANSWERS_PER_CLIENT": ("2", "app.answers_per_client", 2),
    "KBAGENT_ANSWER_STALL_S": ("5", "app.answer_stall_s", 5.0),
    "KBAGENT_OPENAI_HISTORY_CHARS": ("9000", "app.openai_history_chars", 9000),
    "KBAGENT_MCP_MAX_SESSIONS": ("7", "app.mcp_max_sessions", 7),
    "KBAGENT_MCP_IDLE_S": ("60", "app.mcp_idle_s", 60.0),
    "OPENAI_API_KEY": ("sk-o", "keys.openai_api_key", "sk-o"),
    "OPENAI_BASE_URL": ("http://127.0.0.1:8080/v1", "keys.openai_base_url", "http://127.0.0.1:8080/v1"),
    "ANTHROPIC_API_KEY": ("sk-a", "keys.anthropic_api_key", "sk-a"),
    "ANTHROPIC_BASE_URL": ("http://127.0.0.1:8091/v1", "keys.anthropic_base_url", "http://127.0.0.1:8091/v1"),
    "GOOGLE_API_KEY": ("g-k", "keys.google_api_key", "g-k"),
    "GEMINI_BASE_URL": ("http://127.0.0.1:8092/v1", "keys.gemini_base_url", "http://127.0.0.1:8092/v1"),
    "DEEPSEEK_API_KEY": ("d-k", "keys.deepseek_api_key", "d-k"),
    "DEEPSEEK_BASE_URL": ("http://127.0.0.1:8093/v1", "keys.deepseek_base_url", "http://127.0.0.1:8093/v1"),
    "HF_TOKEN": ("hf-t", "keys.hf_token", "hf-t"),
    "OLLAMA_HOST": ("127.0.0.1:11500", "keys.ollama_host", "127.0.0.1:11500"),
    "KBAGENT_WEB_SEARCH": ("searxng:http://127.0.0.1:8888", "tools.web_search", "searxng:http://127.0.0.1:8888"),
    "KBAGENT_WEB_SEARCH_RESULTS": ("8", "tools.web_search_results", 8),
    "KBAGENT_WEB_SEARCH_TIMEOUT_S": ("4", "tools.web_search_timeout_s", 4.0),
    "KBAGENT_WEB_SEARCH_MAX_KB": ("512", "tools.web_search_max_kb", 512),
    "KBAGENT_MCP_SERVERS": ("/etc/kb/mcp.json", "tools.mcp_servers", Path("/etc/kb/mcp.json")),
    "KBAGENT_MCP_TIMEOUT_S": ("12", "tools.mcp_timeout_s", 12.0),
    "KBAGENT_MCP_MAX_OUTPUT_CHARS": ("5000", "tools.mcp_max_output_chars", 5000),
    "KBAGENT_MCP_START_TIMEOUT_S": ("20", "tools.mcp_start_timeout_s", 20.0),
    "KBAGENT_PUBLIC_URL": ("https://kb.example.org", "viewer.public_url", "https://kb.example.org"),
    "KBAGENT_VIEW_TIMEOUT_S": ("5", "viewer.view_timeout_s", 5.0),
    "KBAGENT_VIEW_MEMORY_MB": ("1024", "viewer.view_memory_mb", 1024),
    "KBAGENT_VIEW_MAX_MEGAPIXELS": ("4", "viewer.view_max_megapixels", 4.0),
    "BRAVE_SEARCH_API_KEY": ("b-k", "search_keys.brave_search_api_key", "b-k"),
    "BRAVE_API_KEY": ("b-k2", "search_keys.brave_api_key", "b-k2"),
    "TAVILY_API_KEY": ("tv-k", "search_keys.tavily_api_key", "tv-k"),
    "SERPAPI_API_KEY": ("sp-k", "search_keys.serpapi_api_key", "sp-k"),
}


def _read(settings: Settings, where: str) -> Any:
    section, name = where.split(".")
    value = getattr(getattr(settings, section), name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_flat_name_is_known_and_listed() -> None:
    assert {env_name(flat) for flat in FLAT} == set(EXPECTED)


@pytest.mark.parametrize("source", ["environment", "dotenv"])
def test_every_old_variable_lands_in_its_section(source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for variable in EXPECTED:
        monkeypatch.delenv(variable, raising=False)
    env_file = tmp_path / ".env"
    if source == "environment":
        for variable, (raw, _, _) in EXPECTED.items():
            monkeypatch.setenv(variable, raw)
        env_file.write_text("")
    else:
        env_file.write_text("".join(f"{variable}={raw}\n" for variable, (raw, _, _) in EXPECTED.items()))
    settings = Settings(_env_file=env_file)
    for variable, (_, where, want) in EXPECTED.items():
        assert _read(settings, where) == want, variable


def test_precedence_keyword_then_environment_then_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KBAGENT_SEARCH_K=3\nKBAGENT_COLLECTION=from-file\nKBAGENT_CHUNK_SIZE=400\n")
    monkeypatch.setenv("KBAGENT_SEARCH_K", "4")
    settings = Settings(_env_file=env_file, chunk_size=600)
    assert (settings.search.k, settings.store.collection, settings.ingest.chunk_size) == (4, "from-file", 600)
    changed = settings.override(search_k=9, collection=None)  # None leaves a setting as it is
    assert (changed.search.k, changed.store.collection, changed.ingest.chunk_size) == (9, "from-file", 600)
    assert settings.search.k == 4  # the original is untouched


def test_mistyped_names_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="unknown setting 'search_kk'"):
        Settings(_env_file=None, search_kk=3)
    with pytest.raises(ValueError, match="unknown setting 'serch_k'"):
        Settings(_env_file=None).override(serch_k=3)
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(_env_file=None).override(chunk_size=100, chunk_overlap=100)
    monkeypatch.setenv("KBAGENT_SEARCH_MODE", "fuzzy")
    with pytest.raises(ConfigError, match=r"^invalid setting KBAGENT_SEARCH_MODE: Input should be 'hybrid'"):
        load_settings()


def test_sections_are_built_by_field_name_too() -> None:
    from knowledge_base.config import SearchConfig

    assert SearchConfig(k=4).k == SearchConfig(search_k=4).k == 4  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SearchConfig(kk=4)  # type: ignore[call-arg]
