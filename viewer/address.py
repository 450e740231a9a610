"""Stable addresses of cited passages: `/source/<knowledge base>/<source id>?chunk=<chunk id>`.

A source id survives edits and moves (`knowledge_base.records`); a chunk id does not, so an address whose chunk
is gone still opens its source, and the passage text saved with the answer finds its place again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

SOURCE_ID = re.compile(r"[0-9a-f]{16}")
CHUNK_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]{16}(?:-\d{1,6})?")


@dataclass(frozen=True)
class Address:
    knowledge_base: str
    source_id: str
    chunk_id: str = ""


def source_address(knowledge_base: str, source_id: str, chunk_id: str = "", public_url: str = "") -> str:
    """The app-relative address, or with `public_url` (KBAGENT_PUBLIC_URL) the absolute one."""
    path = f"/source/{quote(knowledge_base, safe='')}/{source_id}" + (f"?chunk={chunk_id}" if chunk_id else "")
    return public_url.rstrip("/") + path if public_url else path


def public_address(knowledge_base: str, source_id: str, chunk_id: str, public_url: str) -> str | None:
    """The absolute address answers outside the app carry (/v1, MCP), or None without KBAGENT_PUBLIC_URL."""
    return source_address(knowledge_base, source_id, chunk_id, public_url) if public_url else None


def parse_address(address: str) -> Address | None:
    """An address (absolute or app-relative) as its parts, or None when it is not one: the ids are checked for
    their shape here, so nothing else a request holds (a path, `..`) goes any further."""
    parts = urlsplit(address)
    pieces = parts.path.split("/")
    if len(pieces) != 4 or pieces[0] != "" or pieces[1] != "source":
        return None
    knowledge_base, source_id = unquote(pieces[2]), pieces[3]
    chunk_id = (parse_qs(parts.query).get("chunk") or [""])[0]
    if not knowledge_base or not SOURCE_ID.fullmatch(source_id) or (chunk_id and not CHUNK_ID.fullmatch(chunk_id)):
        return None
    return Address(knowledge_base, source_id, chunk_id)
