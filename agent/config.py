"""The agent's settings sections: which model answers and how, and the provider keys (under their usual names)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from kbagent.sections import Section

DEFAULT_TEMPERATURE = 0.0  # the one default: the settings' and an app session's (`SessionChoices`)
DEFAULT_K = 5


class AgentConfig(Section):
    model: str = Field(
        "",
        description="openai:NAME, anthropic:NAME, gemini:NAME, deepseek:NAME, ollama:NAME, "
        "hf:ID-OR-PATH, gguf:PATH; empty = the embedded GGUF model.",
    )
    tool_calling: Literal["auto", "on", "off"] = Field(
        "auto", description="Let the model call tools (auto: on for API models, off for small local ones)."
    )
    temperature: float = Field(
        DEFAULT_TEMPERATURE,
        ge=0,
        le=2,
        description="0: the same answer each time; 0 answered more sample questions right than 0.2.",
    )
    repeat_penalty: float = Field(
        1.1,
        ge=1.0,
        le=2.0,
        description="Local models: how much to hold back tokens just written or read (1.1 is llama.cpp's "
        "default; 1.0 lets the model copy what it just read).",
    )
    max_tokens: int = Field(512, ge=16, le=32768, description="Longest answer, in tokens.")
    context_tokens: int = Field(4096, ge=512, le=131072, description="Context window for local models.")
    cpu_threads: int = Field(
        0,
        ge=0,
        alias="threads",
        description="CPU threads for local models; 0 = all cores.",
        json_schema_extra={"shown_default": "all cores"},
    )
    k: int = Field(DEFAULT_K, ge=1, le=20, alias="agent_k", description="Passages the agent retrieves per search.")
    instructions: str = Field(
        "",
        max_length=4000,
        description="Instructions added to the end of the system prompt (a knowledge base's own, set with "
        "`kbagent kb set NAME instructions ...`, replace them).",
    )
    context_chars: int = Field(
        1000,
        ge=200,
        le=100_000,
        alias="agent_context_chars",
        description="Passage text a local model reads per answer: each passage's sentences closest to the "
        "question, this many characters in all (prompt reading is the slow part on a CPU).",
    )
    local_tool_steps: int = Field(
        0,
        ge=0,
        le=5,
        description="Tool calls a local model may make after the first search (search again, calculator, "
        "scraper), in its own tool-call format; 0 = answer from the first search. With the embedded coder model, 2 "
        "answered the sample set's two-step questions no better than 0 and took longer (docs/benchmarks.md), so 0 "
        "by default; try 2 with a general instruction-tuned GGUF (`kbagent models pull`).",
    )
    min_similarity: float = Field(
        0.3,
        ge=-1,
        le=1,
        alias="agent_min_similarity",
        description="Passages less similar to the question are not shown to the model.",
    )


class ProviderKeys(Section):
    """Read from the providers' usual variable names (OPENAI_API_KEY, ...), without the KBAGENT_ prefix."""

    openai_api_key: SecretStr | None = Field(None, description="OpenAI's key, for openai: models and embeddings.")
    openai_base_url: str | None = Field(
        None,
        description="An OpenAI-compatible server for openai: models (vLLM, llama.cpp's server, LM Studio, "
        "`kbagent serve-model`); unset = OpenAI.",
    )
    anthropic_api_key: SecretStr | None = Field(None, description="Anthropic's key, for anthropic: models.")
    anthropic_base_url: str = Field("https://api.anthropic.com/v1/", description="Anthropic's OpenAI-compatible API.")
    google_api_key: SecretStr | None = Field(None, description="Google's key, for gemini: models.")
    gemini_base_url: str = Field(
        "https://generativelanguage.googleapis.com/v1beta/openai/", description="Gemini's OpenAI-compatible API."
    )
    deepseek_api_key: SecretStr | None = Field(None, description="DeepSeek's key, for deepseek: models.")
    deepseek_base_url: str = Field("https://api.deepseek.com/v1", description="DeepSeek's OpenAI-compatible API.")
    hf_token: SecretStr | None = Field(None, description="A Hugging Face token for `kbagent models pull`.")
    ollama_host: str = Field("http://127.0.0.1:11434", description="The Ollama server for ollama: models.")

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value else None
