"""The one error the text converters raise; file loaders and the web fetcher each re-raise it as their own."""

from __future__ import annotations


class ExtractError(Exception):
    """Bytes that hold no readable text (binary, unknown charset, corrupt or encrypted PDF); one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split())[:300])
