"""The Knowledge base tab: upload files or add a URL, the sources table, delete and re-ingest, a trial search,
the watched folders.

`KnowledgeHandlers` holds what the handlers share and no components, so a test calls a handler directly; `build`
lays the tab out and `wire` connects the two once the Settings tab (whose k and mode the search uses) exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from kbagent.errors import UserError
from kbagent.services.operations import ReportingProgress, Services, SessionChoices
from ui import knowledge_format
from ui.settings_tab import SettingsTab, mode_or_default


class KnowledgeHandlers:
    """The tab's handlers over the shared services; method names are the endpoints' names, so they stay put.
    Each write handler returns its message first, then `view()`'s table, selection and totals. Outputs are
    `object`s: a value or a `gr.update(...)`, which Gradio checks against its component."""

    def __init__(self, svc: Services, defaults: SessionChoices) -> None:
        self.svc = svc
        self.defaults = defaults

    def view(self, keep: list[str] | None = None) -> tuple[object, ...]:
        """The sources table, the selection (`keep`, less what is gone) and the totals, as they are now."""
        records = self.svc.sources()
        names = [r.source for r in records]
        kept = [s for s in keep or [] if s in names]
        return (
            knowledge_format.source_rows(records),
            gr.update(choices=[(r.display, r.source) for r in records], value=kept),
            knowledge_format.totals_markdown(self.svc.stats()),
        )

    def refresh(self, chosen: list[str] | None) -> tuple[object, ...]:
        """Another session or the CLI may have changed the knowledge base: show it again, selection kept."""
        return self.view(chosen)

    # Copies the uploads under safe names, ingests them (deleting the copies not ingested) and clears the upload
    # box. No docstring: Gradio would show it as the description of the public /ingest_files endpoint, which has
    # none.
    def ingest_uploads(self, paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[object, ...]:  # noqa: B008
        if not paths:
            gr.Warning("Choose one or more files first.")
            return (gr.skip(), *self.view())
        report, renamed = self.svc.ingest_uploads(
            ((p, Path(p).name) for p in paths), progress=ReportingProgress(lambda f, t: progress(f, desc=t))
        )
        message = knowledge_format.report_markdown(
            report, "Upload", self.svc.display_names()
        ) + knowledge_format.same_bytes_markdown(renamed)
        return (message, None, *self.view())

    def ingest_url_ui(
        self,
        link: str,
        depth: float | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[object, ...]:
        """Ingest a web page (and its same-site links to `depth`); only http(s) URLs, refused with a warning."""
        link = (link or "").strip()
        if not link.lower().startswith(("http://", "https://")):
            gr.Warning("Enter an http:// or https:// URL.")
            return (gr.skip(), gr.skip(), *self.view())
        try:
            report = self.svc.ingest_paths(
                [], [link], crawl=int(depth or 0), progress=ReportingProgress(lambda f, t: progress(f, desc=t))
            )
        except Exception as exc:  # a bad KBAGENT_ALLOW_HOSTS entry and the like
            gr.Warning(f"Could not ingest {link}: {exc}")
            return (gr.skip(), gr.skip(), *self.view())
        return (knowledge_format.report_markdown(report, "Web", self.svc.display_names()), "", *self.view())

    def delete_selected(self, chosen: list[str] | None) -> tuple[object, ...]:
        """Delete the selected sources (and their uploaded copies); nothing selected gets a warning."""
        if not chosen:
            gr.Warning("Select one or more sources first (click a row, or pick them in the list).")
            return (gr.skip(), *self.view())
        removed = self.svc.remove(list(chosen))
        return (f"**Deleted** {len(removed)} source(s).", *self.view())

    def reingest_selected(self, chosen: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[object, ...]:  # noqa: B008
        """Read the selected sources again; the selection stays for another try."""
        if not chosen:
            gr.Warning("Select one or more sources first.")
            return (gr.skip(), *self.view())
        report = self.svc.reingest(list(chosen), progress=ReportingProgress(lambda f, t: progress(f, desc=t)))
        return (knowledge_format.report_markdown(report, "Re-ingest", self.svc.display_names()), *self.view(chosen))

    def select_row(self, chosen: list[str] | None, evt: gr.SelectData) -> object:
        """A click on a table row adds its source to the selection."""
        row = evt.row_value or []
        source = knowledge_format.source_of_cell(row[0]) if row else ""
        current = list(chosen or [])
        if source and source not in current:
            current.append(source)
        return gr.update(value=current)

    def watch_view(self) -> str:
        """The watched folders with each one's last sync and errors (on page load and every few seconds)."""
        watched = self.svc.watched
        return knowledge_format.watched_markdown(watched.status(), watched.roots)

    def watch_add(self, typed: str) -> tuple[object, str]:
        """Watch a folder on the server, only under KBAGENT_WATCH_ROOTS; a refusal is a warning, the path kept."""
        try:
            self.svc.watched.add(typed)
        except UserError as exc:
            gr.Warning(str(exc))
            return gr.skip(), self.watch_view()
        return "", self.watch_view()

    def watch_remove(self, typed: str) -> tuple[object, str]:
        """Stop watching a folder; its sources stay (delete them in the table)."""
        try:
            self.svc.watched.remove(typed)
        except UserError as exc:
            gr.Warning(str(exc))
            return gr.skip(), self.watch_view()
        return "", self.watch_view()

    def search_ui(self, query: str, k_value: float, mode_value: str) -> str:
        """Try a search with the session's k and mode, to see what the agent would be given."""
        if not (query or "").strip():
            gr.Warning("Type something to search for.")
            return ""
        mode_value = mode_or_default(mode_value, self.defaults)
        docs = self.svc.search(query, int(k_value or self.defaults.k), mode_value)
        return knowledge_format.search_markdown(docs, self.svc.display_names())


@dataclass
class KnowledgeTab:
    """The tab's components that handlers read or write."""

    tab: gr.Tab
    totals: gr.Markdown
    files: gr.File
    ingest_files: gr.Button
    url: gr.Textbox
    crawl: gr.Number
    add_url: gr.Button
    ingest_result: gr.Markdown
    sources_table: gr.Dataframe
    selected: gr.Dropdown
    delete: gr.Button
    reingest: gr.Button
    refresh: gr.Button
    search_query: gr.Textbox
    search_button: gr.Button
    search_results: gr.Markdown
    watch_status: gr.Markdown
    watch_path: gr.Textbox
    watch_add: gr.Button
    watch_remove: gr.Button
    watch_timer: gr.Timer


def build(handlers: KnowledgeHandlers) -> KnowledgeTab:
    """Lay out the tab (inside `gr.Tabs`): totals, the two ways in, the sources table and its actions, a search."""
    svc = handlers.svc
    with gr.Tab("Knowledge base", id="kb") as tab:
        totals = gr.Markdown(knowledge_format.totals_markdown(svc.stats()), elem_id="totals")
        with gr.Row():
            with gr.Column():
                files = gr.File(label="Upload files", file_count="multiple", elem_id="upload")
                ingest_files = gr.Button("Ingest files", variant="primary", elem_id="ingest-files")
            with gr.Column():
                url = gr.Textbox(label="Web page URL", placeholder="https://…", elem_id="url")
                crawl = gr.Number(
                    label="Crawl depth (0: this page only)", value=0, minimum=0, maximum=5, precision=0, elem_id="crawl"
                )
                add_url = gr.Button("Add URL", elem_id="add-url")
        ingest_result = gr.Markdown(elem_id="ingest-result")
        sources_table = gr.Dataframe(
            value=knowledge_format.source_rows(svc.sources()),
            headers=knowledge_format.SOURCE_HEADERS,
            datatype=knowledge_format.SOURCE_TYPES,  # type: ignore[arg-type]
            column_widths=knowledge_format.SOURCE_WIDTHS,  # type: ignore[arg-type]
            interactive=False,
            wrap=True,
            max_height=420,
            label="Sources (click a row to select it)",
            elem_id="sources-table",
        )
        with gr.Row():
            selected = gr.Dropdown(
                label="Selected sources",
                choices=[(r.display, r.source) for r in svc.sources()],
                multiselect=True,
                scale=5,
                elem_id="selected",
            )
            delete = gr.Button("Delete", variant="stop", scale=1, elem_id="delete-sources")
            reingest = gr.Button("Re-ingest", scale=1, elem_id="reingest")
            refresh = gr.Button("Refresh", scale=1, elem_id="refresh")
        with gr.Accordion("Try a search", open=False):
            with gr.Row():
                search_query = gr.Textbox(
                    show_label=False, placeholder="Search the chunks…", scale=5, elem_id="search-query"
                )
                search_button = gr.Button("Search", scale=1, elem_id="search")
            search_results = gr.Markdown(elem_id="search-results")
        with gr.Accordion("Watched folders", open=False):
            watch_status = gr.Markdown(handlers.watch_view(), elem_id="watched")
            with gr.Row():
                watch_path = gr.Textbox(
                    show_label=False, placeholder="/full/path/of/a/folder/on/the/server", scale=5, elem_id="watch-path"
                )
                watch_add = gr.Button("Watch", scale=1, elem_id="watch-add")
                watch_remove = gr.Button("Stop watching", scale=1, elem_id="watch-remove")
            watch_timer = gr.Timer(5.0, active=bool(svc.watched.roots))  # no polling while watching is off
    return KnowledgeTab(
        tab,
        totals,
        files,
        ingest_files,
        url,
        crawl,
        add_url,
        ingest_result,
        sources_table,
        selected,
        delete,
        reingest,
        refresh,
        search_query,
        search_button,
        search_results,
        watch_status,
        watch_path,
        watch_add,
        watch_remove,
        watch_timer,
    )


def wire(tab: KnowledgeTab, handlers: KnowledgeHandlers, session: SettingsTab) -> None:
    """Connect the handlers; after every tab is laid out, since the search uses the Settings tab's k and mode.
    Writes share the "kb_write" queue with the API's, one at a time."""
    view = [tab.sources_table, tab.selected, tab.totals]
    tab.ingest_files.click(
        handlers.ingest_uploads,
        tab.files,
        [tab.ingest_result, tab.files, *view],
        api_name="ingest_files",
        concurrency_id="kb_write",
        concurrency_limit=1,
    )
    tab.add_url.click(
        handlers.ingest_url_ui,
        [tab.url, tab.crawl],
        [tab.ingest_result, tab.url, *view],
        api_visibility="undocumented",
        concurrency_id="kb_write",
        concurrency_limit=1,
    )
    tab.delete.click(
        handlers.delete_selected,
        tab.selected,
        [tab.ingest_result, *view],
        api_visibility="undocumented",
        concurrency_id="kb_write",
        concurrency_limit=1,
    )
    tab.reingest.click(
        handlers.reingest_selected,
        tab.selected,
        [tab.ingest_result, *view],
        api_visibility="undocumented",
        concurrency_id="kb_write",
        concurrency_limit=1,
    )
    tab.refresh.click(handlers.refresh, tab.selected, view, api_visibility="private")
    tab.tab.select(handlers.refresh, tab.selected, view, api_visibility="private", show_progress="hidden")
    tab.sources_table.select(handlers.select_row, tab.selected, tab.selected, api_visibility="private")
    watch_outputs = [tab.watch_path, tab.watch_status]
    tab.watch_add.click(handlers.watch_add, tab.watch_path, watch_outputs, api_visibility="private")
    tab.watch_path.submit(handlers.watch_add, tab.watch_path, watch_outputs, api_visibility="private")
    tab.watch_remove.click(handlers.watch_remove, tab.watch_path, watch_outputs, api_visibility="private")
    hidden = {"api_visibility": "private", "show_progress": "hidden"}
    tab.watch_timer.tick(handlers.watch_view, None, tab.watch_status, **hidden)  # type: ignore[arg-type]
    search_inputs = [tab.search_query, session.k, session.mode]
    for trigger in (tab.search_query.submit, tab.search_button.click):
        trigger(handlers.search_ui, search_inputs, tab.search_results, api_visibility="private")
