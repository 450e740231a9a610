"""The Knowledge base tab's text: ingest reports, watched folders, the sources table, totals, search results."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from langchain_core.documents import Document

from ingest import IngestReport
from kbagent.services.uploads import StoredUpload
from kbagent.services.watching import FolderStatus
from knowledge_base.records import SourceRecord, location_of
from ui.markup import md_escape, middle_cut, path_html

SOURCE_HEADERS = ["source", "title", "type", "doc_type", "chunks", "ingested at"]
SOURCE_TYPES = ["html", "str", "str", "str", "number", "str"]
SOURCE_WIDTHS = ["34%", "26%", "8%", "10%", "7%", "15%"]


def report_markdown(report: IngestReport, title: str = "Ingest", names: Mapping[str, str] | None = None) -> str:
    """An ingest report: counts, then one line per source (with what a loader left out, if anything)."""
    lines = [f"**{title}:** {report.summary()}"]
    for o in report.outcomes:
        if o.status in ("failed", "skipped"):
            icon = "✘" if o.status == "failed" else "⚠"
            lines.append(f"- {icon} {path_html(o.source, names or {})}: {md_escape(o.message)}")
        elif o.status in ("added", "updated"):
            lines.append(f"- ✔ {path_html(o.source, names or {})}: {o.status}, {o.chunks} chunks")
            lines.extend(f"  - ⚠ {md_escape(note)}" for note in o.notes)
    return "\n".join(lines)


def watched_markdown(statuses: Sequence[FolderStatus], roots: Sequence[Path]) -> str:
    """The watched folders: each one's last sync (when, what changed) and its last errors."""
    if not roots:
        return "Watching folders from the app is off (the server's owner sets `KBAGENT_WATCH_ROOTS`)."
    allowed = ", ".join(md_escape(str(r)) for r in roots)
    if not statuses:
        return f"No folders watched. Folders under {allowed} can be."
    lines = [f"Folders under {allowed} can be watched.", "", "| folder | last sync | result |", "|---|---|---|"]
    for s in statuses:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_sync)) if s.last_sync else "—"
        cells = [md_escape(middle_cut(s.folder)), when, md_escape(s.summary)]
        lines.append("| " + " | ".join(cells) + " |")
    for s in statuses:
        for error in s.errors:
            lines.append(f"- ✘ {md_escape(middle_cut(s.folder))}: {md_escape(error)}")
    return "\n".join(lines)


def same_bytes_markdown(uploads: Sequence[StoredUpload]) -> str:
    """One line per upload whose bytes were already stored under another name: it is that source, not a second
    one."""
    return "".join(
        f"\n- = `{display_source(u.name)}`: the same bytes as `{display_source(u.path.name)}`, already uploaded; "
        "kept as that one source"
        for u in uploads
    )


def display_source(source: str) -> str:
    return source.replace("`", "'")


def source_rows(records: Sequence[SourceRecord]) -> list[list[object]]:
    """The sources table: each source as its user knows it (the full path on hover), the ingest time to the
    minute."""
    rows: list[list[object]] = []
    for r in records:
        d = r.as_dict()
        when = str(d["ingested_at"]).replace("T", " ")[:16]
        rows.append(
            [path_html(r.source, {r.source: r.display}), d["title"], d["kind"], d["doc_type"], d["chunks"], when]
        )
    return rows


def source_of_cell(cell: object) -> str:
    """The source a sources-table cell shows (its hover title), or the cell's text."""
    found = re.search(r'title="([^"]*)"', str(cell))
    return html.unescape(found.group(1)) if found else str(cell)


def totals_markdown(stats: Mapping[str, object]) -> str:
    doc_types = stats.get("doc_types")
    counts = doc_types.items() if isinstance(doc_types, Mapping) else ()
    types = ", ".join(f"{name or '(none)'} {n}" for name, n in counts) or "none"
    return (
        f"**{stats['sources']} sources, {stats['chunks']} chunks** · doc types: {md_escape(types)} · "
        f"embedding model `{stats['embedding_model']}` · store `{stats['store']}`"
    )


def search_markdown(docs: Sequence[Document], names: Mapping[str, str] | None = None) -> str:
    if not docs:
        return "_No results._"
    out = []
    for n, d in enumerate(docs, start=1):
        meta = d.metadata
        where = path_html(str(meta.get("url") or meta.get("source") or ""), names or {})
        page = f" · {md_escape(location_of(meta))}" if location_of(meta) else ""
        text = " ".join(d.page_content.split())[:400]
        title = md_escape(str(meta.get("title") or ""))
        out.append(f"**{n}. {title}** {where}{page} · score {meta.get('score', 0):.3f}\n\n> {md_escape(text)}")
    return "\n\n".join(out)
