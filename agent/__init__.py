"""The agent: chat models built from settings, prompts, and the loop that answers with cited passages."""
