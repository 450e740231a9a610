"""Agent events → Gradio chat messages, and the app's other text: sources, tables, evaluation results."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gradio as gr

from agent.events import Done, Error, Event, Phase, Sources, Token, ToolEnd, ToolStart
from evaluation.thresholds import FIGURES, grade
from kbagent.services.turns import Turn
from knowledge_base.records import LOCATION_SUFFIX, display_path, location_of
from ui.safe_markdown import safe_markdown

TOOL_ICON = "⚙"  # in common fonts (DejaVu too); 🔧 needs an emoji font
MAX_TOOL_OUTPUT = 1500
MAX_PASSAGE_CHARS = 700
MAX_PATH_CHARS = 60  # longer paths are cut in the middle: the folder's start and the file name both show
PASSAGE_LABEL = re.compile(r"^\[(\d+)\] (.*)$")
FRAMING = re.compile(r"^\s*(?:</?retrieved_passages>|</?web_page\b[^>]*>|<!--.*-->)\s*$")  # the model's, not the user's


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

    def __init__(self, history: Sequence[Any], question: str, names: Mapping[str, str] | None = None) -> None:
        self.history = list(history)
        self.names = names or {}  # source → what the user calls it (`KnowledgeBase.display_names`)
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
            self.notice = None
        elif isinstance(event, ToolStart):
            self.parts.append(ToolCall(event.call_id, event.name, dict(event.args or {})))
        elif isinstance(event, Phase) and event.step == "checking":
            self.notice = "No source backs that answer: asking the model again…"
        elif isinstance(event, Phase):
            count = event.passages
            self.notice = f"Reading {count} passage{'' if count == 1 else 's'}…" if count else "Reading…"
        elif isinstance(event, ToolEnd):
            self.notice = "Reading the results…"
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
    def step(self) -> str:
        """What the agent does now, in words, for the sources panel while the answer is not done."""
        if self.parts and isinstance(self.parts[-1], list):
            return self.notice or "Writing the answer…"  # a notice after words: the answer is being checked
        if self.parts and self.parts[-1].output is None:  # type: ignore[union-attr]
            call = self.parts[-1]
            return "Searching the knowledge base…" if call.name == "search_knowledge_base" else f"Running {call.name}…"  # type: ignore[union-attr]
        return self.notice or "Thinking…"

    def turn(self) -> Turn:
        """What this answer showed besides its text, to show again when its conversation is reopened."""
        tools = [{k: v for k, v in asdict(p).items() if k != "started"} for p in self.parts if isinstance(p, ToolCall)]
        return Turn(tools, self.cited, self.retrieved)

    @property
    def answer(self) -> str:
        return "".join("".join(p) for p in self.parts if isinstance(p, list)).strip()

    def messages(self) -> list[Any]:
        out: list[Any] = [*self.history, gr.ChatMessage(role="user", content=self.question)]
        retracted = self.done.retracted if self.done else ""
        for part in self.parts:
            if isinstance(part, ToolCall):
                out.append(tool_message(part, self.names))
            else:
                text = "".join(part)
                if text.strip() and not retracted:
                    out.append(gr.ChatMessage(role="assistant", content=safe_markdown(text, self.names)))
        if self.done is not None:
            out.extend(check_messages(self.done, self.names))
        if self.notice and not self.error and (not self.parts or isinstance(self.parts[-1], ToolCall)):
            last = self.parts[-1] if self.parts else None
            if last is None or last.output is not None:  # type: ignore[union-attr]  # a running tool shows itself
                out.append(
                    gr.ChatMessage(role="assistant", content="", metadata={"title": self.notice, "status": "pending"})
                )
        if self.error:
            out.append(gr.ChatMessage(role="assistant", content=f"⚠ **Error:** {safe_markdown(self.error)}"))
        return out


def check_messages(done: Done, names: Mapping[str, str] | None = None) -> list[gr.ChatMessage]:
    """What the agent's check of the answer found: the answer that replaced a made-up one (the model's own kept
    folded away), or the sentences no source backs, marked so that nobody reads them as facts. The model's words
    are made safe to render (`safe_markdown`: links only to `names`' sources and this machine)."""
    if done.retracted:
        return [
            gr.ChatMessage(role="assistant", content=safe_markdown(done.answer, names or {})),
            gr.ChatMessage(
                role="assistant",
                content=safe_markdown(done.retracted, names or {}),
                metadata={"title": "⚠ The model's answer, which no source backs", "status": "done"},
            ),
        ]
    if not done.unsupported:
        return []
    lines = [f"- {md_escape(u.sentence)} (not found: {', '.join(u.claims)})" for u in done.unsupported]
    title = "⚠ Not found in the sources" + (f" ({len(lines)} sentences)" if len(lines) > 1 else "")
    content = "\n".join(lines)
    return [gr.ChatMessage(role="assistant", content=content, metadata={"title": title, "status": "done"})]


def tool_message(call: ToolCall, names: Mapping[str, str] | None = None) -> gr.ChatMessage:
    """A tool call as a collapsible message: its input, then its output as a user reads it (`readable_output`)."""
    args = json.dumps(call.args, ensure_ascii=False, indent=1) if call.args else "{}"
    body = f"**Input**\n```json\n{args}\n```"
    if call.output is not None:
        body += f"\n\n**{'Output' if call.ok else 'Failed'}**\n\n{readable_output(call.output, names or {})}"
    metadata: dict[str, Any] = {"title": f"{TOOL_ICON} {call.name}", "id": call.call_id}
    if call.output is None:
        metadata["status"] = "pending"
        metadata["log"] = "running"
    else:
        metadata["status"] = "done"
        metadata["duration"] = round(call.seconds or 0.0, 2)
        metadata["log"] = "ok" if call.ok else "failed"
    return gr.ChatMessage(role="assistant", content=body, metadata=metadata)  # type: ignore[arg-type]


def readable_output(output: str, names: Mapping[str, str]) -> str:
    """A tool's output without the framing written for the model (data tags, "not instructions" notes): numbered
    passages as a bold "[n] title · path" and their text quoted, anything else quoted as it is."""
    text = output if len(output) <= MAX_TOOL_OUTPUT else output[:MAX_TOOL_OUTPUT] + " …(cut)"
    out = []
    for line in html.unescape(text).splitlines():
        if FRAMING.match(line):
            continue
        label = PASSAGE_LABEL.match(line)
        if label:
            title, sep, where = label.group(2).rpartition(" — ")
            title, where = (title, where) if sep else ("", label.group(2))
            page = LOCATION_SUFFIX.search(where)
            where = where[: page.start()] if page else where
            facts = [md_escape(title) if title else "", path_html(where, names)]
            out.append(f"**[{label.group(1)}]** " + " · ".join(f for f in facts if f) + (page.group(0) if page else ""))
        else:
            line = plain_text(line, MAX_TOOL_OUTPUT)  # no emphasis markers, table rows as "a · b", rules dropped
            out.append(f"> {md_escape(line)}  " if line.strip() else "")
    return "\n".join(out).strip()


def shown(source: str, names: Mapping[str, str]) -> str:
    """What the user calls `source`: its path relative to the folder it was ingested from, or its URL."""
    return names.get(source) or display_path(source)


def middle_cut(text: str, limit: int = MAX_PATH_CHARS) -> str:
    """`text` cut in the middle to `limit` characters: a path keeps its first folders and its file name."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return f"{text[:head]}…{text[len(text) - (limit - 1 - head) :]}"


def path_html(source: str, names: Mapping[str, str]) -> str:
    """A source for HTML and Markdown: what the user calls it, the full path or URL on hover."""
    return f'<code title="{html.escape(source)}">{html.escape(middle_cut(shown(source, names)))}</code>'


def sources_markdown(
    cited: Sequence[Any], retrieved: Sequence[Any] = (), names: Mapping[str, str] | None = None
) -> str:
    """The sources panel: each cited passage under its [n], with title, link or path, page, score and text; then
    the passages retrieved but not cited, under their own heading and without a number, since they are not
    citations."""
    if not cited and not retrieved:
        return "_No sources for this answer._"
    names = names or {}
    blocks = [_passage_markdown(p, names, f"[{p.n}] ") for p in cited]
    if not cited:
        blocks.append("_The answer cites none of the passages it was given._")
    if retrieved:
        blocks.append("#### Retrieved, not cited")
        blocks.extend(_passage_markdown(p, names) for p in retrieved)
    return "\n\n".join(blocks)


def _passage_markdown(p: Any, names: Mapping[str, str], label: str = "") -> str:
    link = p.source.startswith(("http://", "https://"))
    where = f"[{p.source}]({p.source})" if link else path_html(p.source, names)
    facts = [where]
    if p.location:
        facts.append(p.location)
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


def history_messages(
    turns: Sequence[tuple[str, str]], shown: Mapping[str, Turn] | None = None, names: Mapping[str, str] | None = None
) -> list[gr.ChatMessage]:
    """A past conversation: each answer after the tool calls it made (`shown`, by answer text), as it streamed."""
    out = []
    for role, text in turns:
        turn = (shown or {}).get(text.strip()) if role != "user" else None
        for call in turn.tools if turn else []:
            out.append(tool_message(ToolCall(**call), names))
        shown_text = text if role == "user" else safe_markdown(text, names or {})  # a model's words, made safe
        out.append(gr.ChatMessage(role="user" if role == "user" else "assistant", content=shown_text))
    return out


def models_markdown(models: Sequence[Any]) -> str:
    """Which models run here, one line each: the name, yes or no, and why (`agent.models.ModelChoice`)."""
    lines = []
    for m in models:
        verdict = "runs here" if m.usable else "does not run here"
        lines.append(f"- {'✔' if m.usable else '✘'} `{md_escape(m.spec)}` {verdict}: {md_escape(m.reason)}")
    return "\n".join(lines) or "_No models._"


def thread_label(info: Any) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated_at))
    return f"{info.title or '(untitled)'} · {when} · {info.model}"


def report_markdown(report: Any, title: str = "Ingest", names: Mapping[str, str] | None = None) -> str:
    """An ingest report: counts, then one line per source (with what a loader left out, if anything)."""
    c = report.counts
    moved = f", {c['moved']} moved" if c.get("moved") else ""
    lines = [
        f"**{title}:** {c['added']} added, {c['updated']} updated, {c['unchanged']} unchanged, {c['failed']} failed, "
        f"{c['skipped']} skipped, {c['removed']} removed{moved}; {report.embedded} chunks embedded in "
        f"{report.seconds:.1f} s"
        + (f"; {report.ocr_pages} pages OCR'd in {report.ocr_seconds:.1f} s" if report.ocr_pages else "")
    ]
    for o in report.outcomes:
        if o.status in ("failed", "skipped"):
            icon = "✘" if o.status == "failed" else "⚠"
            lines.append(f"- {icon} {path_html(o.source, names or {})}: {md_escape(o.message)}")
        elif o.status in ("added", "updated"):
            lines.append(f"- ✔ {path_html(o.source, names or {})}: {o.status}, {o.chunks} chunks")
            lines.extend(f"  - ⚠ {md_escape(note)}" for note in o.notes)
    return "\n".join(lines)


def watched_markdown(statuses: Sequence[Any], roots: Sequence[Any]) -> str:
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


def same_bytes_markdown(uploads: Sequence[Any]) -> str:
    """One line per upload whose bytes were already stored under another name
    (`kbagent.services.uploads.StoredUpload`): it is that source, not a second one."""
    return "".join(
        f"\n- = `{display_source(u.name)}`: the same bytes as `{display_source(u.path.name)}`, already uploaded; "
        "kept as that one source"
        for u in uploads
    )


def display_source(source: str) -> str:
    return source.replace("`", "'")


GRADE_COLOUR = {"good": "#15803d", "fair": "#b45309", "poor": "#b91c1c"}


def colour(value: float) -> str:
    return GRADE_COLOUR["good" if value >= 0.8 else "fair" if value >= 0.5 else "poor"]


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


def eval_rows(results: Sequence[Any], names: Mapping[str, str] | None = None) -> list[list[Any]]:
    """One row per question; the first five retrieved chunks by rank and source only, so a row stays a few lines
    high."""
    rows = []
    for r in results:
        missing = [k for k, rank in r.keyword_ranks.items() if rank is None]
        names_shown = [middle_cut(shown(str(c.get("source") or ""), names or {}), 32) for c in r.retrieved]
        retrieved = " · ".join(f"{n}. {name}" for n, name in enumerate(names_shown[:5], start=1))
        retrieved += f" · (+{len(names_shown) - 5} more)" if len(names_shown) > 5 else ""
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
EVAL_WIDTHS = ["27%", "10%", "7%", "7%", "8%", "12%", "29%"]
SOURCE_HEADERS = ["source", "title", "type", "doc_type", "chunks", "ingested at"]


SOURCE_TYPES = ["html", "str", "str", "str", "number", "str"]
SOURCE_WIDTHS = ["34%", "26%", "8%", "10%", "7%", "15%"]


def source_rows(records: Sequence[Any]) -> list[list[Any]]:
    """The sources table: each source as its user knows it (the full path on hover), the ingest time to the
    minute."""
    rows = []
    for r in records:
        d = r.as_dict()
        when = str(d["ingested_at"]).replace("T", " ")[:16]
        rows.append(
            [path_html(r.source, {r.source: r.display}), d["title"], d["kind"], d["doc_type"], d["chunks"], when]
        )
    return rows


def source_of_cell(cell: Any) -> str:
    """The source a sources-table cell shows (its hover title), or the cell's text."""
    found = re.search(r'title="([^"]*)"', str(cell))
    return html.unescape(found.group(1)) if found else str(cell)


def totals_markdown(stats: dict[str, Any]) -> str:
    types = ", ".join(f"{name or '(none)'} {n}" for name, n in stats.get("doc_types", {}).items()) or "none"
    return (
        f"**{stats['sources']} sources, {stats['chunks']} chunks** · doc types: {md_escape(types)} · "
        f"embedding model `{stats['embedding_model']}` · store `{stats['store']}`"
    )


def search_markdown(docs: Sequence[Any], names: Mapping[str, str] | None = None) -> str:
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


# ---- the answers evaluation ---------------------------------------------------------------------------------

JUDGE_CRITERIA = ("accuracy", "completeness", "relevance")


def figure_cell(name: str, value: Any) -> str:
    """One leaderboard figure, green, amber or red by `evaluation.thresholds` (the CLI's lines)."""
    shade = grade(name, value)
    text = "–" if value is None else f"{value:.3g}" if isinstance(value, float) else html.escape(str(value))
    if shade is None:
        return f'<td class="figure">{text}</td>'
    return f'<td class="metric {shade}" style="color:{GRADE_COLOUR[shade]};font-weight:600">{text}</td>'


def _figure_rows(named: list[tuple[list[str], dict[str, Any]]], judged: bool) -> str:
    rows = []
    for labels, figures in named:
        cells = "".join(f"<td>{html.escape(label)}</td>" for label in labels)
        cells += "".join(figure_cell(name, figures[name]) for name in FIGURES)
        if judged:
            scores = figures.get("judge") or {}
            cells += "".join(figure_cell(f"judge_{c}", scores.get(c)) for c in JUDGE_CRITERIA)
        rows.append(f"<tr>{cells}</tr>")
    return "".join(rows)


def answers_leaderboard_html(board: dict[str, Any]) -> str:
    """A row per model with every figure (the CLI's, coloured by its lines), then the same per category."""
    judged = any(entry["overall"].get("judge") for entry in board.values())
    names = [*FIGURES, *(f"judge {c} (1-5)" for c in JUDGE_CRITERIA if judged)]
    head = "".join(f"<th>{html.escape(n.replace('_', ' '))}</th>" for n in names)
    overall = _figure_rows([([model], entry["overall"]) for model, entry in board.items()], judged)
    by_category = _figure_rows(
        [([model, c], figures) for model, entry in board.items() for c, figures in entry["categories"].items()],
        judged,
    )
    caption = "Answers — green, amber or red by the same lines as <code>kbagent eval --answers</code>"
    return (
        f'<div class="kb-answers" style="overflow-x:auto"><table class="kb-leaderboard"><caption>{caption}</caption>'
        f"<tr><th>model</th>{head}</tr>{overall}</table>"
        f'<details class="kb-by-category"><summary>By category</summary><table>'
        f"<tr><th>model</th><th>category</th>{head}</tr>{by_category}</table></details></div>"
    )


def answer_flags(row: Any) -> list[str]:
    """What one answer got right and wrong, one short phrase each (✔ good, ✘ bad)."""
    if row.error:
        return [f"✘ failed: {row.error}"]
    flags = []
    if row.contains is not None:
        flags.append("✔ contains the answer" if row.contains else "✘ misses the answer")
    if not row.answerable:
        flags.append("✔ abstained (unanswerable)" if row.abstained else "✘ answered an unanswerable question")
    elif row.abstained:
        flags.append("✘ abstained")
    if not row.abstained:
        flags.append(f"✔ cites {row.cited_passages}" if row.cited else "✘ cites nothing")
    if row.citations:
        flags.append(f"{row.supported_citations}/{row.citations} citations supported")
    if row.unsupported:
        flags.append(f"✘ {len(row.unsupported)} unsupported claim(s)")
    return flags


def _figures_line(row: Any) -> str:
    parts = [f"keyword recall {row.keyword_recall:.2f}" if row.keyword_recall is not None else "",
             f"F1 {row.f1:.2f}" if row.f1 is not None else "",
             f"first token {row.first_token_s:.1f} s" if row.first_token_s is not None else "",
             f"{row.seconds:.1f} s", f"{row.completion_tokens} tokens",
             f"${row.usd:.5f}" if row.usd is not None else ""]  # fmt: skip
    return " · ".join(p for p in parts if p)


def _judge_html(judge: dict[str, Any] | None) -> str:
    if not judge:
        return ""
    if judge.get("error"):
        return f"<p><b>Judge:</b> {html.escape(str(judge['error']))}</p>"
    items = "".join(
        f"<li>{c} {judge[c]:.0f}/5: {html.escape(str(judge.get(f'{c}_reason', '')))}</li>" for c in JUDGE_CRITERIA
    )
    return f"<p><b>Judge</b></p><ul>{items}</ul>"


def _cited_html(row: Any, passages: Sequence[Any]) -> str:
    if not passages:
        return f"<p><b>Cited passages:</b> {row.cited_passages or 'none'}</p>"
    blocks = "".join(
        f'<blockquote class="kb-passage"><b>{html.escape(p.label)}</b><br>'
        f'<span style="white-space:pre-wrap">{html.escape(plain_text(p.text, MAX_PASSAGE_CHARS))}</span></blockquote>'
        for p in passages
    )
    return f"<p><b>Cited passages</b></p>{blocks}"


def answer_details_html(rows: Sequence[Any], cited: dict[tuple[str, str], list[Any]]) -> str:
    """One `<details>` per (model, question): the summary line names them with the flags; opened, it shows the
    answer, its figures, the passages it cited and the judge's grades. Everything from a model or a document is
    escaped: shown as text, never rendered."""
    if not rows:
        return "<p><i>No answers yet.</i></p>"
    items = []
    for row in rows:
        flags = answer_flags(row)
        marks = "".join(f[0] for f in flags if f[0] in "✔✘")
        summary = (
            f"<b>{html.escape(row.model)}</b> · {html.escape(row.category)} · {html.escape(row.question)} "
            f'<span class="kb-marks">{marks}</span>'
        )
        body = (
            f'<p><b>Answer</b></p><div class="kb-answer-text" style="white-space:pre-wrap">'
            f"{html.escape(row.answer) or '<i>(none)</i>'}</div>"
            f'<ul class="kb-flags">{"".join(f"<li>{html.escape(f)}</li>" for f in flags)}</ul>'
            f"<p>{html.escape(_figures_line(row))}</p>"
            + "".join(f"<p>unsupported: {html.escape(claim)}</p>" for claim in row.unsupported)
            + _cited_html(row, cited.get((row.model, row.question), []))
            + _judge_html(row.judge)
        )
        items.append(f'<details class="kb-answer" data-id="{html.escape(row.id)}"><summary>{summary}</summary>'
                     f'<div style="padding:0.5em 1em">{body}</div></details>')  # fmt: skip
    return f'<div class="kb-answers">{"".join(items)}</div>'
