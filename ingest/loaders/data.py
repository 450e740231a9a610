"""JSON and JSON Lines as text a search can find: each top-level item (a key of the top object, an element of
the top array, a line of a .jsonl file) a Markdown section of `path: value` lines. The chunker splits at
sections and heads every chunk with its section, so a chunk of a large array still says which item it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import decode

MAX_DEPTH = 40  # deeper values are written as compact JSON on one line
NAME_KEYS = ("title", "name", "id", "key", "slug")  # an array item's section is named by the first it has


def load_json(path: Path, raw: bytes) -> list[Document]:
    text, encoding = decode(raw)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise LoadError(f"not valid JSON ({_reason(exc)})") from exc
    return [_document(path, _sections(data), encoding)]


def load_jsonl(path: Path, raw: bytes) -> list[Document]:
    text, encoding = decode(raw)
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as exc:
                raise LoadError(f"line {number} is not valid JSON ({_reason(exc)})") from exc
    return [_document(path, [(_item_name(item, n), item) for n, item in enumerate(items, 1)], encoding)]


def _document(path: Path, sections: list[tuple[str, Any]], encoding: str) -> Document:
    title = path.stem.replace("_", " ").replace("-", " ")
    body = [f"# {title}"]
    for name, value in sections:
        lines = list(flatten(value))
        heading = " ".join(name.split())[:80] or "(no name)"
        body.append(f"## {heading}\n" + "\n".join(lines or ["(empty)"]))
    return Document(
        page_content="\n\n".join(body), metadata={"title": title, "encoding": encoding, "format": "markdown"}
    )


def _sections(data: Any) -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [(str(key), value) for key, value in data.items()]
    if isinstance(data, list):
        return [(_item_name(item, n), item) for n, item in enumerate(data, 1)]
    return [("value", data)]


def _item_name(item: Any, number: int) -> str:
    if isinstance(item, dict):
        for key in NAME_KEYS:
            value = item.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
                return f"{number}. {str(value).strip()[:80]}"
    return f"item {number}"


def flatten(value: Any, path: str = "", depth: int = 0) -> Iterator[str]:
    """`a.b[2].c: value` lines; a list of plain values on one line."""
    if depth >= MAX_DEPTH:
        yield f"{path}: {json.dumps(value, ensure_ascii=False)}"
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            yield f"{path or 'values'}: {', '.join(_scalar(v) for v in value)}"
        else:
            for n, inner in enumerate(value):
                yield from flatten(inner, f"{path}[{n}]", depth + 1)
    else:
        yield f"{path or 'value'}: {_scalar(value)}"


def _scalar(value: Any) -> str:
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _reason(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
