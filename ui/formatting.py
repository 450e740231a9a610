"""Agent events → Gradio chat messages, and the app's other text: sources, tables, evaluation results."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from agent.events import Done, Error, Event, Sources, Token, ToolEnd, ToolStart

TOOL_ICON = "⚙"  # in common fonts (DejaVu too); 🔧 needs an emoji font
MAX_TOOL_OUTPUT = 1500
MAX_PASSAGE_CHARS = 700


@dataclass
class ToolCall:
    call_id: str
    name: str
    args: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)
    output: str | None = None
    seconds: float | None = None
    ok: bool = True


class AnswerView:
    """One answer's events, folded into the chat messages that show it. `messages()` returns a new list of new
    messages every time (Gradio diffs what it is given; mutating what it already holds would send nothing)."""

    def __init__(self, history: Sequence[Any], question: str) -> None:
        self.history = list(history)
        self.question = question
        self.parts: list[ToolCall | list[str]] = []  # tool calls and answer text, in the order they came
        self.cited: list[Any] = []
        self.retrieved: list[Any] = []  # retrieved and not cited
        self.done: Done | None = None
        self.error: str | None = None
        self.notice: str | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, Token):
            if not self.parts or not isinstance(self.parts[-1], list):
                self.parts.append([])
            self.parts[-1].append(event.text)  # type: ignore[union-attr]
        elif isinstance(event, ToolStart):
            self.parts.append(ToolCall(event.call_id, event.name, dict(event.args or {})))
        elif isinstance(event, ToolEnd):
            call = next((p for p in self.parts if isinstance(p, ToolCall) and p.call_id == event.call_id), None)
            if call is None:
                call = ToolCall(event.call_id, event.name, {})
                self.parts.append(call)
            call.output, call.seconds, call.ok = event.output, event.seconds, event.ok
        elif isinstance(event, Sources):
            self.cited, self.retrieved = list(event.cited), list(event.retrieved)
        elif isinstance(event, Done):
            self.done = event
        elif isinstance(event, Error):
            self.error = event.message

    @property
    def answer(self) -> str:
        return "".join("".join(p) for p in self.parts if isinstance(p, list)).strip()

    def messages(self) -> list[Any]:
        out: list[Any] = [*self.history, gr.ChatMessage(role="user", content=self.question)]
        for part in self.parts:
            if isinstance(part, ToolCall):
                out.append(tool_message(part))
            else:
                text = "".join(part)
                if text.strip():
                    out.append(gr.ChatMessage(role="assistant", content=text))
        if self.notice and not self.parts and not self.error:
            out.append(
                gr.ChatMessage(
                    role="assistant", content=self.notice, metadata={"title": self.notice, "status": "pending"}
                )
            )
        if self.error:
            out.append(gr.ChatMessage(role="assistant", content=f"⚠ **Error:** {self.error}"))
        return out


def tool_message(call: ToolCall) -> gr.ChatMessage:
    args = json.dumps(call.args, ensure_ascii=False, indent=1) if call.args else "{}"
    body = f"**Input**\n```json\n{args}\n```"
    if call.output is not None:
        output = call.output if len(call.output) <= MAX_TOOL_OUTPUT else call.output[:MAX_TOOL_OUTPUT] + " …(cut)"
        body += f"\n**{'Output' if call.ok else 'Failed'}**\n```text\n{output.replace('```', 'ʼʼʼ')}\n```"
    metadata: dict[str, Any] = {"title": f"{TOOL_ICON} {call.name}", "id": call.call_id}
    if call.output is None:
        metadata["status"] = "pending"
        metadata["log"] = "running"
    else:
        metadata["status"] = "done"
        metadata["duration"] = round(call.seconds or 0.0, 2)
        metadata["log"] = "ok" if call.ok else "failed"
    return gr.ChatMessage(role="assistant", content=body, metadata=metadata)  # type: ignore[arg-type]


def sources_markdown(cited: Sequence[Any], retrieved: Sequence[Any] = ()) -> str:
    """The sources panel: each cited passage under its [n], with title, link or path, page, score and text; then
    the passages retrieved but not cited, under their own heading and without a number, since they are not
    citations."""
    if not cited and not retrieved:
        return "_No sources for this answer._"
    blocks = [_passage_markdown(p, f"[{p.n}] ") for p in cited]
    if not cited:
        blocks.append("_The answer cites none of the passages it was given._")
    if retrieved:
        blocks.append("#### Retrieved, not cited")
        blocks.extend(_passage_markdown(p) for p in retrieved)
    return "\n\n".join(blocks)


def _passage_markdown(p: Any, label: str = "") -> str:
    where = f"[{p.source}]({p.source})" if p.source.startswith(("http://", "https://")) else f"`{p.source}`"
    facts = [where]
    if p.page:
        facts.append(f"p. {p.page}")
    if p.score is not None:
        facts.append(f"score {p.score:.3f}")
    if p.similarity is not None:
        facts.append(f"similarity {p.similarity:.2f}")
    title = md_escape(p.title or "untitled")
    return f"**{label}{title}**  \n{' · '.join(facts)}\n\n{quote(plain_text(p.text, MAX_PASSAGE_CHARS))}"


def plain_text(text: str, limit: int) -> str:
    """A passage as readable plain text: emphasis markers and table rules dropped, cells separated by ' · '."""
    lines = []
    for line in text.splitlines():
        line = line.replace("**", "").replace("__", "").strip()
        if line.startswith("|") or line.endswith("|"):
            if set(line) <= set("|-: "):
                continue
            line = " · ".join(cell.strip() for cell in line.strip("|").split("|"))
        lines.append(" ".join(line.split()))
    text = "\n".join(line for n, line in enumerate(lines) if line or (n and lines[n - 1]))
    return text[:limit].rstrip() + ("…" if len(text) > limit else "")


def quote(text: str) -> str:
    """Escaped text as a Markdown block quote, line breaks kept."""
    return "\n".join(f"> {md_escape(line)}  " if line else ">" for line in text.splitlines())


def md_escape(text: str) -> str:
    """Text shown as text: no HTML, no Markdown structure (links, emphasis, headings) from documents."""
    text = html.escape(text, quote=False)
    for ch in "\\`*_[]#|":
        text = text.replace(ch, "\\" + ch)
    return text


def history_messages(turns: Sequence[tuple[str, str]]) -> list[gr.ChatMessage]:
    return [gr.ChatMessage(role="user" if role == "user" else "assistant", content=text) for role, text in turns]


def thread_label(info: Any) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated_at))
    return f"{info.title or '(untitled)'} · {when} · {info.model}"


def report_markdown(report: Any, title: str = "Ingest") -> str:
    """An ingest report: counts, then one line per failed or skipped source."""
    c = report.counts
    lines = [
        f"**{title}:** {c['added']} added, {c['updated']} updated, {c['unchanged']} unchanged, {c['failed']} failed, "
        f"{c['skipped']} skipped, {c['removed']} removed; {report.embedded} chunks embedded in {report.seconds:.1f} s"
    ]
    for o in report.outcomes:
        if o.status in ("failed", "skipped"):
            icon = "✘" if o.status == "failed" else "⚠"
            lines.append(f"- {icon} `{display_source(o.source)}`: {md_escape(o.message)}")
        elif o.status in ("added", "updated"):
            lines.append(f"- ✔ `{display_source(o.source)}`: {o.status}, {o.chunks} chunks")
    return "\n".join(lines)


def same_bytes_markdown(uploads: Sequence[Any]) -> str:
    """One line per upload whose bytes were already stored under another name (`ui.uploads.StoredUpload`): it is
    that source, not a second one."""
    return "".join(
        f"\n- = `{display_source(u.name)}`: the same bytes as `{display_source(u.path.name)}`, already uploaded; "
        "kept as that one source"
        for u in uploads
    )


def display_source(source: str) -> str:
    return source.replace("`", "'")


def colour(value: float) -> str:
    return "#15803d" if value >= 0.8 else "#b45309" if value >= 0.5 else "#b91c1c"


def metric_cell(value: float) -> str:
    name = "good" if value >= 0.8 else "fair" if value >= 0.5 else "poor"
    return f'<td class="metric {name}" style="color:{colour(value)};font-weight:600">{value:.3f}</td>'


def eval_summary_html(summary: dict[str, Any]) -> str:
    """MRR, nDCG and coverage overall and per category, green (≥ 0.8), amber (≥ 0.5) or red."""
    k = summary["k"]
    head = f"<tr><th>category</th><th>questions</th><th>MRR</th><th>nDCG@{k}</th><th>coverage</th></tr>"
    rows = []
    for name, row in [*summary["categories"].items(), ("overall", summary["overall"])]:
        style = ' style="font-weight:700;border-top:2px solid #888"' if name == "overall" else ""
        rows.append(
            f"<tr{style}><td>{html.escape(name)}</td><td>{row['questions']}</td>"
            f"{metric_cell(row['mrr'])}{metric_cell(row['ndcg'])}{metric_cell(row['coverage'])}</tr>"
        )
    caption = f"Retrieval ({html.escape(summary['mode'])}, top {k}) — green ≥ 0.8, amber ≥ 0.5, red below"
    return f'<table class="kb-eval"><caption>{caption}</caption>{head}{"".join(rows)}</table>'


def eval_rows(results: Sequence[Any]) -> list[list[Any]]:
    rows = []
    for r in results:
        missing = [k for k, rank in r.keyword_ranks.items() if rank is None]
        retrieved = "\n".join(
            f"{n}. {c.get('source') or ''} ({(c.get('score') or 0):.3f}): {_snippet(c.get('text'), 160)}"
            for n, c in enumerate(r.retrieved, start=1)
        )
        rows.append(
            [
                r.question,
                r.category,
                round(r.mrr, 3),
                round(r.ndcg, 3),
                round(r.coverage, 3),
                ", ".join(missing),
                retrieved,
            ]
        )
    return rows


def _snippet(text: str | None, limit: int) -> str:
    return " ".join((text or "").split())[:limit]


EVAL_HEADERS = ["question", "category", "MRR", "nDCG", "coverage", "missing keywords", "retrieved chunks"]
SOURCE_HEADERS = ["source", "title", "type", "doc_type", "chunks", "ingested at"]


def source_rows(records: Sequence[Any]) -> list[list[Any]]:
    rows = []
    for r in records:
        d = r.as_dict()
        rows.append([d["source"], d["title"], d["kind"], d["doc_type"], d["chunks"], d["ingested_at"]])
    return rows


def totals_markdown(stats: dict[str, Any]) -> str:
    types = ", ".join(f"{name or '(none)'} {n}" for name, n in stats.get("doc_types", {}).items()) or "none"
    return (
        f"**{stats['sources']} sources, {stats['chunks']} chunks** · doc types: {md_escape(types)} · "
        f"embedding model `{stats['embedding_model']}` · store `{stats['store']}`"
    )


def search_markdown(docs: Sequence[Any]) -> str:
    if not docs:
        return "_No results._"
    out = []
    for n, d in enumerate(docs, start=1):
        meta = d.metadata
        where = display_source(str(meta.get("url") or meta.get("source") or ""))
        page = f" · p. {meta['page']}" if meta.get("page") else ""
        text = " ".join(d.page_content.split())[:400]
        title = md_escape(str(meta.get("title") or ""))
        out.append(f"**{n}. {title}** `{where}`{page} · score {meta.get('score', 0):.3f}\n\n> {md_escape(text)}")
    return "\n\n".join(out)
