"""Errors the fetcher raises: each message is one line a user can act on."""

from __future__ import annotations


class FetchError(Exception):
    """A page could not be fetched or read; `str(exc)` is one clear line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split())[:300])


class Refused(FetchError):
    """The address guard refused a URL or a redirect hop."""
