"""The viewer's settings section: where the app is reachable from outside, and what drawing a page may cost."""

from __future__ import annotations

from pydantic import Field

from knowledge_base.config import Section


class ViewerConfig(Section):
    public_url: str = Field(
        "",
        description="The app's address as others reach it (https://kb.example.org): answers over /v1 and MCP carry "
        "absolute addresses of their cited passages under it. Empty: they carry the source and place, no address.",
    )
    view_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a worker may take to draw a page or a document view; then it is stopped.",
    )
    view_memory_mb: int = Field(
        1536, ge=256, le=1_048_576, description="Address space (RLIMIT_AS) of the worker that draws pages and views."
    )
    view_max_megapixels: float = Field(
        8.0, gt=0, le=100, description="Most pixels (M) a drawn page has, whatever size the page claims."
    )
