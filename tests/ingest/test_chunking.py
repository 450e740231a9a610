"""Headings first, then size-bounded pieces, each carrying its title and section as context."""

from __future__ import annotations

from langchain_core.documents import Document

from ingest.chunking import Chunker, ChunkingConfig


def test_sections_become_context_headers() -> None:
    text = "# Guide\n\nIntro.\n\n## Brakes\n\nSqueeze the lever.\n\n### Pads\n\nReplace at 1.5 mm.\n"
    chunks = Chunker(ChunkingConfig(200, 20)).split([Document(text, metadata={"format": "markdown"})], "Guide")
    assert [c.page_content.split("\n\n")[0] for c in chunks] == ["Guide", "Guide › Brakes", "Guide › Brakes › Pads"]
    assert chunks[2].metadata["section"] == "Guide › Brakes › Pads"
    assert chunks[2].page_content.endswith("Replace at 1.5 mm.")


def test_long_sections_split_within_size_with_overlap() -> None:
    body = " ".join(f"Sentence number {i} talks about gears." for i in range(200))
    config = ChunkingConfig(300, 60)
    chunks = Chunker(config).split([Document(f"# T\n\n## S\n\n{body}", metadata={"format": "markdown"})], "T")
    assert len(chunks) > 10
    header = "T › S\n\n"
    assert all(c.page_content.startswith(header) for c in chunks)
    assert all(len(c.page_content) - len(header) <= config.chunk_size for c in chunks)
    first, second = (c.page_content[len(header) :] for c in chunks[:2])
    assert first[-20:] in second  # neighbours share text


def test_code_fences_stay_with_their_section() -> None:
    text = "# T\n\n## Setup\n\nRun this:\n\n```\n# not a heading\nmake\n```\n\nThen go.\n"
    chunks = Chunker(ChunkingConfig(500, 0)).split([Document(text, metadata={"format": "markdown"})], "T")
    assert len(chunks) == 1
    assert "# not a heading" in chunks[0].page_content and "Then go." in chunks[0].page_content


def test_headings_with_nothing_under_them_keep_their_text() -> None:
    """A parent heading lives on in its children's headers; a closing or sibling-less one becomes its own chunk."""
    text = "# Guide\n\n## Brakes\n\nSqueeze.\n\n## Spares\n\n## Tyres\n\nPump.\n\n```\nx\n```\n\n### Appendix Q\n"
    chunks = Chunker(ChunkingConfig(200, 20)).split([Document(text, metadata={"format": "markdown"})], "Guide")
    assert [c.page_content for c in chunks] == [
        "Guide › Brakes\n\nSqueeze.",
        "Guide › Spares\n\nSpares",
        "Guide › Tyres\n\nPump.\n\n```\nx\n```",
        "Guide › Tyres › Appendix Q\n\nAppendix Q",
    ]
    [only] = Chunker(ChunkingConfig()).split([Document("# Lone title", metadata={"format": "markdown"})], "Lone title")
    assert only.page_content == "Lone title\n\nLone title"


def test_pages_keep_numbers_and_plain_text_is_not_parsed_as_markdown() -> None:
    pages = [
        Document("# not a heading on page one", metadata={"page": 1, "format": "text"}),
        Document("Page two text", metadata={"page": 2, "format": "text"}),
    ]
    chunks = Chunker(ChunkingConfig()).split(pages, "Manual")
    assert [c.metadata["page"] for c in chunks] == [1, 2]
    assert "section" not in chunks[0].metadata
    assert chunks[0].page_content == "Manual\n\n# not a heading on page one"


def test_fingerprint_changes_with_config() -> None:
    assert ChunkingConfig(800, 80).fingerprint != ChunkingConfig(800, 40).fingerprint
