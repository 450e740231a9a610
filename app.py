"""The Gradio app: chat, knowledge base, evaluation, settings. `python app.py` (or `kbagent serve`) opens it.

Only the composition lives here: `build_app` puts together the tabs (`ui/*_tab.py`) and the API (`ui/api.py`)
over parts built elsewhere (settings, knowledge base, an agent factory, an ingest function), so tests hand it a
scripted model; `main` builds the real parts and launches (`ui/server.py`).
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

import sys
from typing import Any

import gradio as gr

from agent.memory import ThreadStore
from agent.models import ModelChoice, available_models
from knowledge_base import KnowledgeBase
from ui import api, chat_tab, evaluation_tab, knowledge_tab, settings_tab
from ui.server import is_loopback, launch, parse_auth
from ui.services import Ingest, MakeAgent, Services

__all__ = ["build_app", "is_loopback", "launch", "main", "parse_auth"]


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
    chat = chat_tab.ChatHandlers(svc, defaults)
    knowledge = knowledge_tab.KnowledgeHandlers(svc, defaults)
    evaluation = evaluation_tab.EvaluationHandlers(svc, defaults, settings)

    with gr.Blocks(title="kbagent") as demo:
        thread_state = gr.State("")
        gr.Markdown("## kbagent — ask your documents")
        with gr.Tabs():
            chat_view = chat_tab.build(chat, models)
            knowledge_view = knowledge_tab.build(knowledge)
            evaluation_view = evaluation_tab.build(evaluation)
            session = settings_tab.build(defaults)
        # Wired once every tab exists (handlers read the Settings tab), in the order the endpoints always had.
        chat_tab.wire(chat_view, chat, thread_state, session)
        knowledge_tab.wire(knowledge_view, knowledge, session)
        evaluation_tab.wire(evaluation_view, evaluation, session)
        api.register(api.Api(svc, defaults))

    demo.queue(default_concurrency_limit=4)
    return demo


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
