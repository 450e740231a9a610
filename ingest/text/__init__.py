"""Bytes → text, shared by the file loaders and the web fetcher: charset decoding, HTML → Markdown, PDF → pages.

Each converter raises `ExtractError` with one line saying why; loaders re-raise it as `LoadError`, the fetcher
as `FetchError`. Nothing heavy is imported until a converter runs.
"""

from __future__ import annotations

from ingest.text.decoding import decode
from ingest.text.errors import ExtractError
from ingest.text.html import Converted, html_to_markdown
from ingest.text.pdf import PdfText, pdf_text

__all__ = ["Converted", "ExtractError", "PdfText", "decode", "html_to_markdown", "pdf_text"]
