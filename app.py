"""The Gradio app: chat, knowledge base, evaluation, settings. `python app.py` (or `kbagent serve`) opens it.

Only the composition lives here: `build_app` puts together the tabs (`ui/*_tab.py`) and the API (`ui/api.py`)
over parts built in `kbagent.components` (tests build them with a scripted model); `main` builds the real parts
from the settings and launches (`ui/server.py`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import AsyncIterator

from kbagent import environment

environment.prepare()  # before Gradio or huggingface_hub are imported: they read it once

import gradio as gr  # noqa: E402

from agent.models import ModelChoice, available_models  # noqa: E402
from kbagent.components import Components  # noqa: E402
from kbagent.errors import KbagentError  # noqa: E402
from kbagent.services.access import is_loopback, parse_auth  # noqa: E402
from kbagent.services.operations import Services  # noqa: E402
from kbagent.settings import Settings, load_settings  # noqa: E402
from ui import api, chat_tab, evaluation_tab, knowledge_tab, settings_tab  # noqa: E402
from ui.server import WayIn, launch  # noqa: E402
from ui.source_panel import SourcePages, SourceRoute  # noqa: E402

__all__ = ["build_app", "is_loopback", "launch", "main", "parse_auth"]


def build_app(
    parts: Components, models: list[ModelChoice] | None = None, warm: bool = False, svc: Services | None = None
) -> gr.Blocks:
    """The app over parts built by `kbagent.components` (tests build them with a scripted model). `warm`: load
    the default model in the background now, not when the first question comes. `svc`: services shared with
    the other ways in (MCP, the OpenAI-compatible API)."""
    models = available_models(parts.settings.keys) if models is None else models
    svc = svc or Services(parts, models)
    svc.watched.start()  # idles until a folder is watched (only where KBAGENT_WATCH_ROOTS is set)
    if warm:
        threading.Thread(target=svc.warm_up, name="kbagent-warm-up", daemon=True).start()
    defaults = svc.default_choices()
    chat = chat_tab.ChatHandlers(svc, defaults)
    knowledge = knowledge_tab.KnowledgeHandlers(svc, defaults)
    evaluation = evaluation_tab.EvaluationHandlers(svc, defaults, parts.settings)

    with gr.Blocks(title="kbagent") as demo:
        thread_state = gr.State("")
        gr.Markdown("## kbagent — ask your documents")
        with gr.Tabs():
            chat_view = chat_tab.build(chat, models)
            knowledge_view = knowledge_tab.build(knowledge)
            evaluation_view = evaluation_tab.build(evaluation)
            session = settings_tab.build(defaults, models)
        # Wired once every tab exists (handlers read the Settings tab), in the order the endpoints always had.
        chat_tab.wire(chat_view, chat, thread_state, session)
        knowledge_tab.wire(knowledge_view, knowledge, session)
        evaluation_tab.wire(evaluation_view, evaluation, session)
        api.register(api.Api(svc, defaults))
        # Every list and total as it is when the page opens, not as it was when the server started.
        load = {"api_visibility": "private", "show_progress": "hidden"}
        demo.load(chat.threads_now, None, chat_view.thread_list, **load)
        demo.unload(chat.cancel)  # a tab closed mid-answer stops it: the model is free for others
        kb_view = [knowledge_view.sources_table, knowledge_view.selected, knowledge_view.totals]
        demo.load(knowledge.view, None, kb_view, **load)
        demo.load(knowledge.watch_view, None, knowledge_view.watch_status, **load)

    demo.queue(default_concurrency_limit=4)
    return demo


def main(settings: Settings | None = None) -> None:
    """Build the real parts from the settings and serve until interrupted."""
    try:
        settings = settings or load_settings()
        parse_auth(settings.app.auth)
        parts = Components(settings)
        parts.kb  # noqa: B018  (opened now: a store that can't be opened is said before the server starts)
    except (ValueError, KbagentError) as exc:
        sys.exit(f"kbagent: error: {exc}")
    with parts:
        svc = Services(parts, available_models(settings.keys))
        demo = build_app(parts, warm=True, svc=svc)
        url = f"http://{settings.app.host}:{settings.app.port}"
        print(f"kbagent: the app is at {url} (Ctrl+C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            launch(demo, settings, ways_in(svc, settings, url), quiet=True)


def ways_in(svc: Services, settings: Settings, url: str) -> list[WayIn]:
    """The viewer's pages (always: the chat's citations open them), and the endpoints for programs the settings
    turn on, served beside the UI."""
    found = [source_way(svc)]
    if settings.app.mcp:
        from kbagent.frontends.mcp_server import PATH, http_app

        mcp_app, lifespan = http_app(svc, settings)
        found.append(WayIn(PATH, mcp_app, lifespan))
        print(f"kbagent: MCP (streamable HTTP) at {url}{PATH}", flush=True)
    if settings.app.openai_api:
        from kbagent.frontends.openai_api import PREFIX, OpenAIApi

        found.append(WayIn(PREFIX, OpenAIApi(svc).app(), mount=True))
        print(f"kbagent: OpenAI-compatible API at {url}{PREFIX} (model 'kbagent')", flush=True)
    return found


def source_way(svc: Services) -> WayIn:
    """`/source/<knowledge base>/<source id>`: a cited passage in its document (`ui.source_panel`), behind the
    page's own login (its cookie, or the user and password); its worker process ends with the server."""
    pages = SourcePages(svc)

    @contextlib.asynccontextmanager
    async def closing(_app: object) -> AsyncIterator[None]:
        try:
            yield
        finally:
            pages.close()

    return WayIn("/source/{kb}/{source_id}", SourceRoute(pages), closing, methods=("GET", "HEAD"), login="page")


if __name__ == "__main__":
    main()
