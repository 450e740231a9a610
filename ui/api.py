"""The API for `gradio_client` and scripts: ask, ingest_url, list_sources, remove_source, search.

Typed methods of `Api`: Gradio derives each endpoint's parameters from the type hints and its description from the
docstring (so those docstrings are written for API users). Bad input raises `gr.Error`, which the client shows.
"""

from __future__ import annotations

from dataclasses import asdict

import gradio as gr

from kbagent.errors import KbagentError
from kbagent.services.answering import client_of
from kbagent.services.operations import Services, SessionChoices
from ui.chat_tab import CHAT_CONCURRENCY, MAX_QUESTION_CHARS
from ui.settings_tab import mode_or_default, session_choices


class Api:
    """The endpoints over the shared services; an API call has no session, so it gets the configured defaults."""

    def __init__(self, svc: Services, defaults: SessionChoices) -> None:
        self.svc = svc
        self.defaults = defaults

    def ask(self, question: str, thread_id: str = "", model: str = "", request: gr.Request | None = None) -> dict:
        """Ask the agent. Returns answer, thread_id (pass it back to continue), model, seconds, sources (the passages
        the answer cites), tools (the tool calls made) and retrieved (passages retrieved but not cited)."""
        question = (question or "").strip()
        if not question or len(question) > MAX_QUESTION_CHARS:
            raise gr.Error(f"the question must be 1 to {MAX_QUESTION_CHARS} characters")
        d = self.defaults
        try:
            choices = session_choices(d, model, d.k, d.mode, d.temperature)
            answer = self.svc.ask(question, thread_id or None, choices, client_of(request))
        except KbagentError as exc:  # the model failed, can't be built here, or this client has its share
            raise gr.Error(str(exc)) from exc
        return asdict(answer)

    def ingest_url(self, url: str, crawl: int = 0) -> dict:
        """Ingest a web page (crawl > 0 follows same-site links to that depth). Returns counts and problems."""
        url = (url or "").strip()
        if not url.lower().startswith(("http://", "https://")):
            raise gr.Error("give an http:// or https:// URL")
        try:
            report = self.svc.ingest_paths([], [url], crawl=max(0, min(int(crawl or 0), 5)))
        except Exception as exc:
            raise gr.Error(f"could not ingest {url}: {exc}") from exc
        problems = [asdict(o) for o in report.outcomes if o.status in ("failed", "skipped")]
        return {
            **report.counts,
            "embedded_chunks": report.embedded,
            "seconds": round(report.seconds, 2),
            "problems": problems,
        }

    def list_sources(self) -> list:
        """Every ingested source: source, title, doc_type, kind, chunks, content_hash, ingested_at."""
        return [r.as_dict() for r in self.svc.sources()]

    def remove_source(self, source: str) -> list:
        """Delete one source (as listed by list_sources). Returns what was removed."""
        known = {r.source for r in self.svc.sources()}
        if source not in known:
            raise gr.Error(f"not in the knowledge base: {source}")
        return self.svc.remove([source])

    def search(self, query: str, k: int = 5, mode: str = "") -> list:
        """Top-k chunks for a query (mode: hybrid, dense or keyword; empty: the configured one)."""
        docs = self.svc.search(query or "", max(1, min(int(k), 50)), mode_or_default(mode, self.defaults))
        return [{"text": d.page_content, **{key: v for key, v in d.metadata.items()}} for d in docs]


def register(api: Api) -> None:
    """Add the endpoints to the Blocks being built; writes share the UI's "kb_write" queue, asks the "chat" one."""
    gr.api(api.ask, api_name="ask", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
    gr.api(api.ingest_url, api_name="ingest_url", concurrency_limit=1, concurrency_id="kb_write")
    gr.api(api.list_sources, api_name="list_sources")
    gr.api(api.remove_source, api_name="remove_source", concurrency_limit=1, concurrency_id="kb_write")
    gr.api(api.search, api_name="search")
