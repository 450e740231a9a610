"""JSON and JSON Lines as text a search can find: each top-level item (a key of the top object, an element of
the top array, a line of a .jsonl file) a Markdown section of `path: value` lines. The chunker splits at
sections and heads every chunk with its section, so a chunk of a large array still says which item it is.

A path longer than PATH_CHARS keeps its last PATH_CHARS characters: written out in full on every leaf, long keys
nested deep made the text grow with the square of the file (229 KB of JSON became 1.3 GB)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from langchain_core.documents import Document

from ingest.loaders.errors import LoadError
from ingest.text import decode
from ingest.text.reading import Reading

PATH_CHARS = 120  # of a leaf's path, its end kept; the section heading says which item it is in
MAX_DEPTH = 40  # deeper values are written as compact JSON on one line
NAME_KEYS = ("title", "name", "id", "key", "slug")  # an array item's section is named by the first it has


def load_json(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    text, encoding = decode(raw)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise LoadError(f"not valid JSON ({_reason(exc)})") from exc
    return [_document(path, _sections(data), encoding, reading)]


def load_jsonl(path: Path, raw: bytes, reading: Reading) -> list[Document]:
    text, encoding = decode(raw)
    return [_document(path, _lines(text), encoding, reading)]


def _lines(text: str) -> Iterator[tuple[str, object]]:
    """Each line's item, parsed only when the reader gets to it (reading stops once the budget is spent)."""
    number = 0
    for line_number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                item = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise LoadError(f"line {line_number} is not valid JSON ({_reason(exc)})") from exc
            number += 1
            yield _item_name(item, number), item


def _document(path: Path, sections: Iterable[tuple[str, object]], encoding: str, reading: Reading) -> Document:
    title = path.stem.replace("_", " ").replace("-", " ")
    body = [reading.take(f"# {title}")]
    for name, value in sections:
        if reading.full:
            break
        heading = " ".join(name.split())[:80] or "(no name)"
        lines = [reading.take(f"## {heading}")]
        for line in flatten(value):
            lines.append(reading.take(line))
            if reading.full:
                break
        body.append("\n".join(lines if len(lines) > 1 else [*lines, "(empty)"]))
    return Document(
        page_content="\n\n".join(body), metadata={"title": title, "encoding": encoding, "format": "markdown"}
    )


def _sections(data: object) -> list[tuple[str, object]]:
    if isinstance(data, dict):
        return [(str(key), value) for key, value in data.items()]
    if isinstance(data, list):
        return [(_item_name(item, n), item) for n, item in enumerate(data, 1)]
    return [("value", data)]


def _item_name(item: object, number: int) -> str:
    if isinstance(item, dict):
        for key in NAME_KEYS:
            value = item.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
                return f"{number}. {str(value).strip()[:80]}"
    return f"item {number}"


def flatten(value: object, path: str = "", depth: int = 0) -> Iterator[str]:
    """`a.b[2].c: value` lines (the path's last PATH_CHARS characters); a list of plain values on one line."""
    if depth >= MAX_DEPTH:
        yield f"{path}: {json.dumps(value, ensure_ascii=False)}"
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, _capped(f"{path}.{key}" if path else str(key)), depth + 1)
    elif isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            yield f"{path or 'values'}: {', '.join(_scalar(v) for v in value)}"
        else:
            for n, inner in enumerate(value):
                yield from flatten(inner, _capped(f"{path}[{n}]"), depth + 1)
    else:
        yield f"{path or 'value'}: {_scalar(value)}"


def _capped(path: str) -> str:
    return path if len(path) <= PATH_CHARS else "…" + path[-(PATH_CHARS - 1) :]


def _scalar(value: object) -> str:
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def _reason(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
