"""Turns a conversational follow-up ("and how much is it for kids?") into a stand-alone search query.

Off by default (`KBAGENT_QUERY_REWRITE`); worth it only with a capable chat model, which the agent passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PROMPT = (
    "Rewrite the user's last question as one stand-alone search query for a document search engine. "
    "Resolve pronouns and references using the conversation. Keep names, numbers and codes exactly. "
    "Reply with the query only."
)


def rewrite_query(model: Any, history: Sequence[tuple[str, str]], question: str, max_turns: int = 6) -> str:
    """`history` is (role, text) pairs, oldest first; returns `question` unchanged when there is nothing to
    resolve or the model's reply is unusable."""
    if not history:
        return question
    from langchain_core.messages import HumanMessage, SystemMessage

    turns = "\n".join(f"{role}: {text}" for role, text in list(history)[-max_turns:])
    reply = model.invoke(
        [SystemMessage(PROMPT), HumanMessage(f"Conversation:\n{turns}\n\nLast question: {question}\n\nQuery:")]
    )
    text = reply.content if isinstance(reply.content, str) else str(reply.content)
    query = text.strip().strip('"').splitlines()[0].strip() if text.strip() else ""
    if not query or len(query) > 4 * max(len(question), 50):
        return question
    return query
