"""An answer with its citations for programs that read it outside the app (MCP clients, OpenAI clients): as text,
and as data saying where each passage lies, so a reader can check it (docs/interop.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from tools.knowledge_search import Passage
from viewer.address import public_address

if TYPE_CHECKING:
    from knowledge_base.store import KnowledgeBase


def sources_block(sources: Sequence[Passage], addresses: Mapping[int, str] | None = None) -> str:
    """'Sources:' and one line per cited passage, as the app and the terminal label it ("[n] title — source
    (p. 3)", or slide, sheet, chapter), then its address in <> where `addresses` (by passage number) has one;
    empty when nothing is cited."""
    if not sources:
        return ""
    where = addresses or {}
    return "\n".join(["Sources:", *(p.label + (f" <{where[p.n]}>" if p.n in where else "") for p in sources)])


def cited_text(answer: str, sources: Sequence[Passage], addresses: Mapping[int, str] | None = None) -> str:
    """The answer, then a blank line and its sources block (when it cites any)."""
    block = sources_block(sources, addresses)
    return f"{answer.strip()}\n\n{block}" if block else answer.strip()


class Citations:
    """Where an answer's passages lie in `kb`: each one's source id and chunk id (what `kbagent show` and the
    viewer open), its place (`location`: page, slide, sheet) and, with `public_url` (KBAGENT_PUBLIC_URL), its
    absolute address `PUBLIC_URL/source/<knowledge base id>/<source id>?chunk=<chunk id>` (the id, which a
    rename leaves alone). Without `kb` or `public_url`, no address: there is no app to point to."""

    def __init__(self, kb: KnowledgeBase | None = None, public_url: str = "") -> None:
        self.kb = kb
        self.public_url = public_url

    def data(self, passages: Sequence[Passage]) -> list[dict[str, object]]:
        """Each passage as data (`Passage.as_dict`) with `source_id` ("" when not recorded) and `address` (None
        where there is none to give)."""
        if self.kb is None or not passages:
            return [{**p.as_dict(), "source_id": "", "address": None} for p in passages]
        ids = self.kb.records.source_ids(p.source for p in passages)
        out: list[dict[str, object]] = []
        for p in passages:
            source_id = ids.get(p.source, "")
            address = public_address(self.kb.id, source_id, p.chunk_id, self.public_url) if source_id else None
            out.append({**p.as_dict(), "source_id": source_id, "address": address})
        return out


def addresses(data: Sequence[Mapping[str, object]]) -> dict[int, str]:
    """Passage number → address, of the passages in `data` (`Citations.data`) that have one."""
    return {n: a for d in data if isinstance(n := d["n"], int) and isinstance(a := d["address"], str)}


class CitedSource(BaseModel):
    """A cited passage in an MCP answer's data: which it is and where it lies (`Citations.data`)."""

    n: int
    title: str
    source: str
    location: str = Field(description="Page, slide, sheet or chapter, as the source line shows it; may be empty.")
    source_id: str = Field(description="The source's stable id (`kbagent show SOURCE_ID:CHUNK_ID`); may be empty.")
    chunk_id: str
    address: str | None = Field(description="Its absolute address in the app (KBAGENT_PUBLIC_URL), or null.")


class CitedAnswer(BaseModel):
    """An MCP answer's data: `result` is its text (the answer and its 'Sources:' block), `sources` the cited
    passages."""

    result: str
    sources: list[CitedSource]


def cited_result(answer: str, sources: Sequence[Passage], cite: Citations) -> CallToolResult:
    """An MCP answer: its text (the answer, its sources block) as the content, and `CitedAnswer` as the data."""
    data = cite.data(sources)
    text = cited_text(answer, sources, addresses(data))
    cited = [CitedSource.model_validate(d) for d in data]
    structured = CitedAnswer(result=text, sources=cited).model_dump(mode="json")
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)
