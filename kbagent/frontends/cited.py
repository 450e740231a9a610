"""An answer as plain text with its citations, for programs that read text (MCP clients, OpenAI clients)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def sources_block(sources: Sequence[dict[str, Any]]) -> str:
    """'Sources:' and one '[n] title — source (p. N)' line per cited passage; empty when nothing is cited."""
    if not sources:
        return ""
    lines = ["Sources:"]
    for p in sources:
        where = str(p["source"]) + (f" (p. {p['page']})" if p.get("page") else "")
        lines.append(f"[{p['n']}] {p['title']} — {where}" if p.get("title") else f"[{p['n']}] {where}")
    return "\n".join(lines)


def cited_text(answer: str, sources: Sequence[dict[str, Any]]) -> str:
    """The answer, then a blank line and its sources block (when it cites any)."""
    block = sources_block(sources)
    return f"{answer.strip()}\n\n{block}" if block else answer.strip()
