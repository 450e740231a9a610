"""The Gradio app: chat, knowledge base, evaluation, settings. `python app.py` (or `kbagent serve`) opens it.

Only the UI lives here: `build_app` lays out the tabs over parts built elsewhere (settings, knowledge base, an
agent factory, an ingest function), so tests hand it a scripted model; `main` builds the real parts and launches.
Handlers call `ui.services`; `ui.render` turns agent events into chat messages.
"""

from __future__ import annotations

import os

# Before Gradio or huggingface_hub are imported: no analytics, no telemetry, nothing downloaded at run time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import ipaddress
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gradio as gr

from agent.events import Done, Sources
from agent.memory import ThreadStore
from agent.models import ModelChoice, available_models
from knowledge_base import KnowledgeBase
from knowledge_base.retrieval import MODES
from ui import render
from ui.services import Ingest, MakeAgent, ReportingProgress, Services, SessionChoices

REPO = Path(__file__).resolve().parent
CHAT_CONCURRENCY = 20  # simultaneous answers; in-process models still answer one at a time (ui.services)
MAX_QUESTION_CHARS = 4000
LOOPBACK_NAMES = {"localhost", "localhost."}
SOURCES_PLACEHOLDER = "_The passages cited in an answer appear here._"
FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]  # local: no font CDN
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
CSS = """
#sources-panel { max-height: 640px; overflow-y: auto; }
.kb-eval { border-collapse: collapse; margin: 0.5em 0; }
.kb-eval td, .kb-eval th { padding: 4px 12px; border-bottom: 1px solid var(--border-color-primary); text-align: left; }
.kb-eval caption { text-align: left; font-weight: 600; padding-bottom: 6px; }
"""


def theme() -> Any:
    return gr.themes.Soft(primary_hue="teal", secondary_hue="slate", font=FONTS, font_mono=MONO)


def build_app(
    settings: Any,
    kb: KnowledgeBase,
    make_agent: MakeAgent,
    ingest: Ingest | None = None,
    threads: ThreadStore | None = None,
    models: list[ModelChoice] | None = None,
) -> gr.Blocks:
    """The app over already-built parts. `make_agent(model, choices)` returns an Agent for a model spec (None:
    the configured one) and the session's k, retrieval mode and temperature; `ingest(paths, urls, ...)` ingests."""
    svc = Services(settings, kb, make_agent, ingest=ingest, threads=threads)
    defaults = svc.default_choices()
    models = available_models(settings) if models is None else models
    model_values = list(dict.fromkeys([defaults.model, *(m.spec for m in models if m.usable and "<" not in m.spec)]))
    question_sets = sorted(str(p.relative_to(REPO)) for p in (REPO / "samples").glob("*.jsonl"))

    with gr.Blocks(title="kbagent") as demo:
        thread_state = gr.State("")
        gr.Markdown("## kbagent — ask your documents")
        with gr.Tabs():
            # ---- Chat ----
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=1, min_width=220):
                    new_chat = gr.Button("New chat", variant="primary", elem_id="new-chat")
                    thread_list = gr.Dropdown(
                        label="Past conversations", choices=thread_choices(svc), value=None, elem_id="threads"
                    )
                    delete_thread = gr.Button("Delete this conversation", size="sm", elem_id="delete-thread")
                    model = gr.Dropdown(
                        label="Model",
                        choices=model_values,
                        value=defaults.model,
                        allow_custom_value=True,
                        info="Pick one, or type provider:model (e.g. openai:gpt-4o-mini).",
                        elem_id="model",
                    )
                    with gr.Accordion("Models on this machine", open=False):
                        gr.Markdown(models_markdown(models))
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        height=560,
                        buttons=["copy", "copy_all"],
                        placeholder="Ask a question about the knowledge base. Answers cite passages as [n].",
                        elem_id="chatbot",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask about your documents…",
                            show_label=False,
                            lines=1,
                            max_lines=6,
                            scale=6,
                            elem_id="question",
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                with gr.Column(scale=2, min_width=260):
                    gr.Markdown("### Sources")
                    sources = gr.Markdown(SOURCES_PLACEHOLDER, elem_id="sources-panel", buttons=["copy"])

            # ---- Knowledge base ----
            with gr.Tab("Knowledge base", id="kb"):
                totals = gr.Markdown(render.totals_markdown(svc.stats()), elem_id="totals")
                with gr.Row():
                    with gr.Column():
                        files = gr.File(label="Upload files", file_count="multiple", elem_id="upload")
                        ingest_files = gr.Button("Ingest files", variant="primary", elem_id="ingest-files")
                    with gr.Column():
                        url = gr.Textbox(label="Web page URL", placeholder="https://…", elem_id="url")
                        crawl = gr.Number(
                            label="Crawl depth (0: this page only)",
                            value=0,
                            minimum=0,
                            maximum=5,
                            precision=0,
                            elem_id="crawl",
                        )
                        add_url = gr.Button("Add URL", elem_id="add-url")
                ingest_result = gr.Markdown(elem_id="ingest-result")
                sources_table = gr.Dataframe(
                    value=render.source_rows(svc.sources()),
                    headers=render.SOURCE_HEADERS,
                    interactive=False,
                    wrap=True,
                    max_height=420,
                    label="Sources (click a row to select it)",
                    elem_id="sources-table",
                )
                with gr.Row():
                    selected = gr.Dropdown(
                        label="Selected sources",
                        choices=[r.source for r in svc.sources()],
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

            # ---- Evaluation ----
            with gr.Tab("Evaluation", id="eval"):
                with gr.Row():
                    question_set = gr.Dropdown(
                        label="Question set",
                        choices=question_sets,
                        value=question_sets[0] if question_sets else None,
                        elem_id="question-set",
                    )
                    question_upload = gr.File(
                        label="…or upload one (.jsonl)", file_types=[".jsonl"], elem_id="question-upload"
                    )
                    eval_k = gr.Number(label="Top k", value=settings.search_k, minimum=1, maximum=100, precision=0)
                run_eval = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
                eval_summary = gr.HTML(elem_id="eval-summary")
                eval_table = gr.Dataframe(
                    headers=render.EVAL_HEADERS, interactive=False, wrap=True, max_height=600, elem_id="eval-table"
                )

            # ---- Settings ----
            with gr.Tab("Settings", id="settings"):
                gr.Markdown("These apply to this browser session only.")
                k = gr.Slider(1, 20, value=defaults.k, step=1, label="Retrieval k (passages per search)", elem_id="k")
                mode = gr.Radio(list(MODES), value=defaults.mode, label="Retrieval mode", elem_id="mode")
                temperature = gr.Slider(
                    0, 2, value=defaults.temperature, step=0.05, label="Temperature", elem_id="temperature"
                )

        # ---- handlers ----
        def choices_of(model_value: str | None, k_value: float, mode_value: str, temp: float) -> SessionChoices:
            return SessionChoices(
                model=(model_value or "").strip() or defaults.model,
                k=int(k_value or defaults.k),
                mode=mode_value if mode_value in MODES else defaults.mode,
                temperature=float(temp if temp is not None else defaults.temperature),
            )

        def chat(
            message: str,
            history: list[Any],
            thread_id: str,
            model_value: str,
            k_value: float,
            mode_value: str,
            temp: float,
        ) -> Any:
            history = list(history or [])
            text = (message or "").strip()
            if not text:
                gr.Warning("Type a question first.")
                yield history, gr.skip(), thread_id, message
                return
            if len(text) > MAX_QUESTION_CHARS:
                gr.Warning(f"That question is too long (over {MAX_QUESTION_CHARS} characters).")
                yield history, gr.skip(), thread_id, message
                return
            view = render.AnswerView(history, text)
            view.notice = "Thinking…"
            yield view.messages(), "_Searching the knowledge base…_", thread_id, ""
            panel: Any = gr.skip()
            for event in svc.stream(text, thread_id or None, choices_of(model_value, k_value, mode_value, temp)):
                view.apply(event)
                if isinstance(event, Sources):
                    panel = render.sources_markdown(event.passages)
                if isinstance(event, Done):
                    thread_id = event.thread_id
                yield view.messages(), panel, thread_id, ""
            if view.error:
                yield view.messages(), "_No sources: the answer failed._", thread_id, ""

        chat_inputs = [question, chatbot, thread_state, model, k, mode, temperature]
        chat_outputs = [chatbot, sources, thread_state, question]
        for trigger in (question.submit, ask.click):
            trigger(
                chat,
                chat_inputs,
                chat_outputs,
                api_visibility="undocumented",
                concurrency_limit=CHAT_CONCURRENCY,
                concurrency_id="chat",
                show_progress="hidden",
            ).then(
                lambda tid: gr.update(choices=thread_choices(svc), value=tid or None),
                thread_state,
                thread_list,
                api_visibility="private",
                show_progress="hidden",
            )

        def new_conversation() -> tuple[Any, ...]:
            return [], SOURCES_PLACEHOLDER, "", gr.update(choices=thread_choices(svc), value=None)

        new_chat.click(new_conversation, None, [chatbot, sources, thread_state, thread_list], api_visibility="private")

        def open_thread(thread_id: str | None, model_value: str, k_value: float, mode_value: str, temp: float) -> Any:
            if not thread_id:
                return [], SOURCES_PLACEHOLDER, ""
            try:
                turns = svc.history(thread_id, choices_of(model_value, k_value, mode_value, temp))
            except Exception as exc:  # e.g. the model can't be built here: say so, keep the page
                gr.Warning(f"Could not open that conversation: {exc}")
                return gr.skip(), gr.skip(), gr.skip()
            return render.history_messages(turns), SOURCES_PLACEHOLDER, thread_id

        thread_list.input(
            open_thread,
            [thread_list, model, k, mode, temperature],
            [chatbot, sources, thread_state],
            api_visibility="private",
        )

        def remove_thread(thread_id: str) -> tuple[Any, ...]:
            if thread_id:
                svc.threads.delete(thread_id)
                gr.Info("Conversation deleted.")
            return new_conversation()

        delete_thread.click(
            remove_thread, thread_state, [chatbot, sources, thread_state, thread_list], api_visibility="private"
        )

        # knowledge base
        kb_outputs = [sources_table, selected, totals]

        def kb_view(keep: list[str] | None = None) -> tuple[Any, ...]:
            records = svc.sources()
            names = [r.source for r in records]
            kept = [s for s in keep or [] if s in names]
            return (
                render.source_rows(records),
                gr.update(choices=names, value=kept),
                render.totals_markdown(svc.stats()),
            )

        def ingest_uploads(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
            if not paths:
                gr.Warning("Choose one or more files first.")
                return (gr.skip(), *kb_view())
            stored, problems = svc.store_uploads((p, Path(p).name) for p in paths)
            report = svc.ingest_paths(stored, [], progress=ReportingProgress(lambda f, t: progress(f, desc=t)))
            report.outcomes[:0] = problems
            return (render.report_markdown(report, "Upload"), None, *kb_view())

        ingest_files.click(
            ingest_uploads,
            files,
            [ingest_result, files, *kb_outputs],
            api_name="ingest_files",
            concurrency_id="kb_write",
            concurrency_limit=1,
        )

        def ingest_url_ui(link: str, depth: float | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
            link = (link or "").strip()
            if not link.lower().startswith(("http://", "https://")):
                gr.Warning("Enter an http:// or https:// URL.")
                return (gr.skip(), gr.skip(), *kb_view())
            try:
                report = svc.ingest_paths(
                    [], [link], crawl=int(depth or 0), progress=ReportingProgress(lambda f, t: progress(f, desc=t))
                )
            except Exception as exc:  # a bad KBAGENT_ALLOW_HOSTS entry and the like
                gr.Warning(f"Could not ingest {link}: {exc}")
                return (gr.skip(), gr.skip(), *kb_view())
            return (render.report_markdown(report, "Web"), "", *kb_view())

        add_url.click(
            ingest_url_ui,
            [url, crawl],
            [ingest_result, url, *kb_outputs],
            api_visibility="undocumented",
            concurrency_id="kb_write",
            concurrency_limit=1,
        )

        def delete_selected(chosen: list[str] | None) -> tuple[Any, ...]:
            if not chosen:
                gr.Warning("Select one or more sources first (click a row, or pick them in the list).")
                return (gr.skip(), *kb_view())
            removed = svc.remove(list(chosen))
            return (f"**Deleted** {len(removed)} source(s).", *kb_view())

        delete.click(
            delete_selected,
            selected,
            [ingest_result, *kb_outputs],
            api_visibility="undocumented",
            concurrency_id="kb_write",
            concurrency_limit=1,
        )

        def reingest_selected(chosen: list[str] | None, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
            if not chosen:
                gr.Warning("Select one or more sources first.")
                return (gr.skip(), *kb_view())
            report = svc.reingest(list(chosen), progress=ReportingProgress(lambda f, t: progress(f, desc=t)))
            return (render.report_markdown(report, "Re-ingest"), *kb_view(chosen))

        reingest.click(
            reingest_selected,
            selected,
            [ingest_result, *kb_outputs],
            api_visibility="undocumented",
            concurrency_id="kb_write",
            concurrency_limit=1,
        )
        refresh.click(lambda chosen: kb_view(chosen), selected, kb_outputs, api_visibility="private")

        def select_row(chosen: list[str] | None, evt: gr.SelectData) -> Any:
            row = evt.row_value or []
            source = str(row[0]) if row else ""
            current = list(chosen or [])
            if source and source not in current:
                current.append(source)
            return gr.update(value=current)

        sources_table.select(select_row, selected, selected, api_visibility="private")

        def search_ui(query: str, k_value: float, mode_value: str) -> str:
            if not (query or "").strip():
                gr.Warning("Type something to search for.")
                return ""
            mode_value = mode_value if mode_value in MODES else defaults.mode
            return render.search_markdown(svc.search(query, int(k_value or defaults.k), mode_value))

        for trigger in (search_query.submit, search_button.click):
            trigger(search_ui, [search_query, k, mode], search_results, api_visibility="private")

        # evaluation
        def evaluate(
            chosen: str | None,
            uploaded: str | None,
            top_k: float | None,
            mode_value: str,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> tuple[Any, ...]:
            path = Path(uploaded) if uploaded else (REPO / chosen if chosen else None)
            if path is None or not path.is_file() or (not uploaded and chosen not in question_sets):
                gr.Warning("Pick a question set or upload one (.jsonl).")
                return gr.skip(), gr.skip()
            mode_value = mode_value if mode_value in MODES else defaults.mode
            try:
                result = svc.evaluate(
                    path,
                    int(top_k or settings.search_k),
                    mode_value,
                    lambda n, total, _r: progress((n, total), desc=f"question {n}/{total}"),
                )
            except ValueError as exc:  # not a question set
                gr.Warning(str(exc).replace(str(path), path.name))
                return gr.skip(), gr.skip()
            return render.eval_summary_html(result.summary()), render.eval_rows(result.results)

        run_eval.click(
            evaluate,
            [question_set, question_upload, eval_k, mode],
            [eval_summary, eval_table],
            api_visibility="undocumented",
            concurrency_id="eval",
            concurrency_limit=1,
        )

        # ---- the API (gradio_client) ----
        def ask_api(question: str, thread_id: str = "", model: str = "") -> dict:
            """Ask the agent. Returns answer, thread_id (pass it back to continue), model, seconds, cited sources and
            the tool calls made."""
            question = (question or "").strip()
            if not question or len(question) > MAX_QUESTION_CHARS:
                raise gr.Error(f"the question must be 1 to {MAX_QUESTION_CHARS} characters")
            try:
                answer = svc.ask(
                    question, thread_id or None, choices_of(model, defaults.k, defaults.mode, defaults.temperature)
                )
            except RuntimeError as exc:
                raise gr.Error(str(exc)) from exc
            return asdict(answer)

        gr.api(ask_api, api_name="ask", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")

        def ingest_url_api(url: str, crawl: int = 0) -> dict:
            """Ingest a web page (crawl > 0 follows same-site links to that depth). Returns counts and problems."""
            url = (url or "").strip()
            if not url.lower().startswith(("http://", "https://")):
                raise gr.Error("give an http:// or https:// URL")
            try:
                report = svc.ingest_paths([], [url], crawl=max(0, min(int(crawl or 0), 5)))
            except Exception as exc:
                raise gr.Error(f"could not ingest {url}: {exc}") from exc
            problems = [asdict(o) for o in report.outcomes if o.status in ("failed", "skipped")]
            return {
                **report.counts,
                "embedded_chunks": report.embedded,
                "seconds": round(report.seconds, 2),
                "problems": problems,
            }

        gr.api(ingest_url_api, api_name="ingest_url", concurrency_limit=1, concurrency_id="kb_write")

        def list_sources_api() -> list:
            """Every ingested source: source, title, doc_type, kind, chunks, content_hash, ingested_at."""
            return [r.as_dict() for r in svc.sources()]

        gr.api(list_sources_api, api_name="list_sources")

        def remove_source_api(source: str) -> list:
            """Delete one source (as listed by list_sources). Returns what was removed."""
            known = {r.source for r in svc.sources()}
            if source not in known:
                raise gr.Error(f"not in the knowledge base: {source}")
            return svc.remove([source])

        gr.api(remove_source_api, api_name="remove_source", concurrency_limit=1, concurrency_id="kb_write")

        def search_api(query: str, k: int = 5, mode: str = "") -> list:
            """Top-k chunks for a query (mode: hybrid, dense or keyword; empty: the configured one)."""
            docs = svc.search(query or "", max(1, min(int(k), 50)), mode if mode in MODES else defaults.mode)
            return [{"text": d.page_content, **{key: v for key, v in d.metadata.items()}} for d in docs]

        gr.api(search_api, api_name="search")

    demo.queue(default_concurrency_limit=4)
    return demo


def thread_choices(svc: Services) -> list[tuple[str, str]]:
    return [(render.thread_label(t), t.thread_id) for t in svc.threads.list(50)]


def models_markdown(models: list[ModelChoice]) -> str:
    lines = ["| | model | |", "|---|---|---|"]
    for m in models:
        lines.append(f"| {'✔' if m.usable else '✘'} | `{m.spec}` | {render.md_escape(m.reason)} |")
    return "\n".join(lines)


def parse_auth(value: Any) -> tuple[str, str] | None:
    """`KBAGENT_AUTH=user:password` → (user, password); empty → no login."""
    raw = value.get_secret_value() if hasattr(value, "get_secret_value") else (value or "")
    if not raw:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise ValueError("KBAGENT_AUTH must be user:password")
    return user, password


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def launch(demo: gr.Blocks, settings: Any, **kwargs: Any) -> Any:
    """Start the server with the host, port and login from the settings; never shared."""
    auth = parse_auth(settings.auth)
    if auth is None and not is_loopback(settings.host):
        print(
            f"warning: the app listens on {settings.host} without a login; anyone who can reach this machine can "
            "read and change the knowledge base. Set KBAGENT_AUTH=user:password.",
            file=sys.stderr,
        )
    options: dict[str, Any] = {
        "server_name": settings.host,
        "server_port": settings.port,
        "auth": auth,
        "auth_message": "kbagent: sign in" if auth else None,
        "share": False,
        "theme": theme(),
        "css": CSS,
        "max_file_size": f"{math.ceil(settings.max_file_mb)}mb",
        "ssr_mode": False,
        "mcp_server": False,
        "pwa": False,
        "footer_links": ["api", "settings"],
        "show_error": False,
    }
    options.update(kwargs)
    options["share"] = False
    return demo.launch(**options)


def main(settings: Any | None = None) -> None:
    """Build the real parts from `Settings()` and serve until interrupted."""
    from pydantic import ValidationError

    from agent.memory import ThreadStore
    from kbagent.errors import ConfigError
    from kbagent.settings import Settings
    from ui.services import default_agent_factory

    try:
        settings = settings or Settings()
        parse_auth(settings.auth)
        kb = KnowledgeBase.open(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        sys.exit(f"kbagent: error: invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except (ValueError, ConfigError) as exc:
        sys.exit(f"kbagent: error: {exc}")
    threads = ThreadStore(settings.threads_path)
    try:
        from tools.scraper import make_scraper

        scraper = make_scraper(settings)
    except ImportError:
        scraper = None
    make_agent = default_agent_factory(settings, kb, threads, scraper)
    demo = build_app(settings, kb, make_agent, threads=threads)
    print(f"kbagent: the app is at http://{settings.host}:{settings.port} (Ctrl+C stops it)", flush=True)
    try:
        launch(demo, settings, quiet=True)
    except KeyboardInterrupt:
        pass
    finally:
        kb.close()


if __name__ == "__main__":
    main()
