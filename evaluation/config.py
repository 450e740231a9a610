"""The evaluation's settings section: what API models cost, for the answers leaderboard."""

from __future__ import annotations

import json

from pydantic import Field, field_validator

from kbagent.sections import Section

# USD per million input and output tokens, as the providers list them (late 2026); KBAGENT_PRICES overrides.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "openai:gpt-4o-mini": (0.15, 0.60),
    "openai:gpt-4o": (2.50, 10.00),
    "openai:gpt-4.1-mini": (0.40, 1.60),
    "openai:gpt-4.1": (2.00, 8.00),
    "deepseek:deepseek-chat": (0.27, 1.10),
}


class EvalConfig(Section):
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        json_schema_extra={"shown_default": "a few OpenAI and DeepSeek models"},
        description='USD per million input and output tokens by model, as JSON: {"openai:gpt-4o-mini": [0.15, 0.6]}; '
        "models not listed (local ones) cost nothing.",
    )

    @field_validator("prices", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    def usd(self, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """What one answer cost, when the model is priced and reported its tokens."""
        price = self.prices.get(model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
