"""An answer as plain text with its citations, for programs that read text (MCP clients, OpenAI clients)."""

from __future__ import annotations

from collections.abc import Sequence

from tools.knowledge_search import Passage


def sources_block(sources: Sequence[Passage]) -> str:
    """'Sources:' and one line per cited passage, as the app and the terminal label it ("[n] title — source
    (p. 3)", or slide, sheet, chapter); empty when nothing is cited."""
    if not sources:
        return ""
    return "\n".join(["Sources:", *(p.label for p in sources)])


def cited_text(answer: str, sources: Sequence[Passage]) -> str:
    """The answer, then a blank line and its sources block (when it cites any)."""
    block = sources_block(sources)
    return f"{answer.strip()}\n\n{block}" if block else answer.strip()
