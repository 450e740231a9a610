"""Structure-aware chunking: headings first, then recursive splitting.

Every chunk starts with a short context header (document title › section path): a passage like "Set it
to 4 mm" is findable only when it says what it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import ExperimentalMarkdownSyntaxTextSplitter, RecursiveCharacterTextSplitter

HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
HEADING_LINE = re.compile(r"#{1,3} (.*)")  # what the Markdown splitter splits on, as it matches it
SEPARATOR = " › "


@dataclass(frozen=True)
class ChunkingConfig:
    chunk_size: int = 800
    chunk_overlap: int = 80

    @property
    def fingerprint(self) -> str:
        """Part of every source's hash, so a change of reading or chunking re-reads everything on the next
        ingest (unchanged chunks keep their vectors). v3: saved HTML files convert as fetched pages do.
        v4: consent banners are found by name and shape (not one class name), cookie-named content is kept."""
        return f"chunking-v4:{self.chunk_size}:{self.chunk_overlap}"


class Chunker:
    def __init__(self, config: ChunkingConfig) -> None:
        self.config = config
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=config.chunk_size,
            chunk_overlap=config.chunk_overlap,
            separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, documents: list[Document], title: str) -> list[Document]:
        chunks: list[Document] = []
        for document in documents:
            for section_path, text in self._sections(document):
                header = _context_header(title, section_path)
                for piece in self._splitter.split_text(text):
                    meta = {k: v for k, v in document.metadata.items() if k in ("page", "location")}
                    if section_path:
                        meta["section"] = section_path
                    chunks.append(Document(page_content=f"{header}\n\n{piece}", metadata=meta))
        return chunks

    def _sections(self, document: Document) -> list[tuple[str, str]]:
        if document.metadata.get("format") != "markdown":
            return [("", document.page_content)]
        # Headings kept in the text, to see which ones have nothing under them.
        splitter = ExperimentalMarkdownSyntaxTextSplitter(HEADINGS, strip_headers=False)
        parts = []
        for part in splitter.split_text(document.page_content):
            path = SEPARATOR.join(part.metadata[key] for _, key in HEADINGS if part.metadata.get(key))
            first, _, rest = part.page_content.partition("\n")
            found = HEADING_LINE.fullmatch(first.rstrip()) if "Code" not in part.metadata else None
            parts.append((path, found.group(1).strip() if found else "", rest if found else part.page_content))
        sections: list[tuple[str, str]] = []
        for n, (path, heading, body) in enumerate(parts):
            text = body.strip()
            if not text:
                # A heading with nothing under it (yet): the headers of what follows under it carry its text;
                # any other (a closing "## Notes", one before a sibling) would otherwise be in no chunk at all.
                following = parts[n + 1][0] if n + 1 < len(parts) else None
                if not heading or following == path or (following or "").startswith(path + SEPARATOR):
                    continue
                text = heading
            if sections and sections[-1][0] == path:  # code blocks come back as their own parts
                sections[-1] = (path, sections[-1][1] + "\n\n" + text)
            else:
                sections.append((path, text))
        return sections


def _context_header(title: str, section_path: str) -> str:
    parts = [p for p in section_path.split(SEPARATOR) if p] if section_path else []
    if parts and parts[0].strip().lower() == title.strip().lower():
        parts = parts[1:]
    return SEPARATOR.join([title, *parts]) if title else SEPARATOR.join(parts)
