"""The Chat tab: past conversations, the model, the streamed answer and the sources it cites.

`ChatHandlers` holds what the handlers share (the services, the session defaults) and no components, so a test
calls a handler directly; `build` lays the tab out and `wire` connects the two once the Settings tab exists.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import gradio as gr

from agent.events import Done, Sources
from agent.models import ModelChoice
from kbagent.services.answering import Busy, Feed, client_of
from kbagent.services.operations import CHAT_CONCURRENCY, MAX_QUESTION_CHARS, Services, SessionChoices
from ui import chat_format
from ui.settings_tab import SettingsTab, session_choices
from ui.source_panel import PANEL_HTML, Addresses

SOURCES_PLACEHOLDER = "_The passages cited in an answer appear here._"
STOP_WAIT_S = 2.0  # Stop returns once the answer's handler has ended (it does within `POLL_S`), or after this


@dataclass
class _Running:
    """An answer being written in one browser session, and whether its handler has ended."""

    feed: Feed
    ended: threading.Event = field(default_factory=threading.Event)


def question_problem(text: str) -> str | None:
    """Why a question can't be asked, or None."""
    if not text:
        return "Type a question first."
    if len(text) > MAX_QUESTION_CHARS:
        return f"That question is too long (over {MAX_QUESTION_CHARS} characters)."
    return None


class ChatHandlers:
    """The tab's handlers over the shared services; method names are the endpoints' names, so they stay put.
    Outputs are `object`s: a value or a `gr.update(...)`, which Gradio checks against its component."""

    def __init__(self, svc: Services, defaults: SessionChoices) -> None:
        self.svc = svc
        self.defaults = defaults
        self._running: dict[str, _Running] = {}  # browser session → its answer being written, for Stop and unload

    def chat(
        self,
        message: str,
        history: list[chat_format.ChatItem],
        thread_id: str,
        model_value: str,
        k_value: float,
        mode_value: str,
        temp: float,
        web: bool = False,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[object, ...]]:
        """Stream one answer into the chat and what the agent is doing, then the passages it cites, into the
        sources panel; a bad question gets a warning and leaves the page as it was. Never writes the question
        box: the user may be typing the next question. The answer runs in a worker (`Services.answer`): Stop, a
        closed tab or Gradio closing this generator stop it, and this handler holds no lock while it yields.
        `web`: the "Search the web too" switch, for this question."""
        history = list(history or [])
        text = (message or "").strip()
        problem = question_problem(text)
        if problem:
            gr.Warning(problem)
            yield history, gr.skip(), thread_id
            return
        choices = session_choices(self.defaults, model_value, k_value, mode_value, temp)
        choices = replace(choices, web=bool(web))
        try:
            feed = self.svc.answer(text, thread_id or None, choices, client_of(request))
        except Busy as exc:
            gr.Warning(str(exc))
            yield history, gr.skip(), thread_id
            return
        session = getattr(request, "session_hash", None) or ""
        running = self._running[session] = _Running(feed)
        try:
            with feed:
                yield from self._shown(feed, history, text, thread_id)
        finally:
            running.ended.set()
            if self._running.get(session) is running:
                del self._running[session]

    def _shown(
        self, feed: Feed, history: list[chat_format.ChatItem], text: str, thread_id: str
    ) -> Iterator[tuple[object, ...]]:
        """The answer's events as page updates: one update for whatever arrived since the last."""
        addresses = Addresses(lambda: self.svc.kb)
        view = chat_format.AnswerView(history, text, self.svc.display_names(), addresses)
        view.notice = "Thinking…"
        yield view.messages(), f"_{view.step}_", thread_id
        panel: object = gr.skip()
        while events := feed.batch():
            for event in events:
                view.apply(event)
                panel = f"_{view.step}_" if not view.done else panel
                if isinstance(event, Sources):
                    links = addresses.of([*event.cited, *event.retrieved])
                    panel = chat_format.sources_markdown(event.cited, event.retrieved, view.names, event.web, links)
                if isinstance(event, Done):
                    thread_id = event.thread_id
                    self.svc.turns.save(thread_id, event.answer, view.turn())
            yield view.messages(), panel, thread_id
        if view.error:
            yield view.messages(), "_No sources: the answer failed._", thread_id

    def cancel(self, request: gr.Request | None = None) -> None:
        """Stops this browser session's answer (the tab closed): the model is free at its next token."""
        self._cancel(request)

    def _cancel(self, request: gr.Request | None) -> _Running | None:
        running = self._running.get(getattr(request, "session_hash", None) or "")
        if running is not None:
            running.feed.close()
        return running

    def take(self, message: str, busy: bool) -> tuple[object, ...]:
        """Ask (or Enter) hands the question to `chat` and empties the box for the next one. While an answer is
        being written the question stays in the box, with a warning (Ask is disabled, Stop shown); a refusal
        raises a silent `gr.Error`, so the chain's `chat` does not run. Returns the question, the box, Ask, Stop
        and busy."""
        text = (message or "").strip()
        waiting = "An answer is still being written: your question stays in the box. Wait, or press Stop."
        problem = waiting if busy else question_problem(text)
        if problem:
            gr.Warning(problem)
            raise gr.Error(problem, visible=False, print_exception=False)
        return text, "", gr.update(value="Answering…", interactive=False), gr.update(visible=True), True

    def finish(self, thread_id: str) -> tuple[object, ...]:
        """After an answer (or Stop): Ask again, Stop hidden, and the thread list as it is now, this one chosen."""
        return (
            self.refresh_threads(thread_id),
            gr.update(value="Ask", interactive=True),
            gr.update(visible=False),
            False,
        )

    def stop(self, thread_id: str, request: gr.Request | None = None) -> tuple[object, ...]:
        """Stop: cancels the answer and returns once its handler has ended, so nothing streams in after Ask is
        back and Gradio has no running handler to cancel (cancelling one mid-update marks the chat "Error")."""
        running = self._cancel(request)
        if running is not None:
            running.ended.wait(STOP_WAIT_S)
        gr.Info("Stopped: the answer so far stays.")
        return self.finish(thread_id)

    def refresh_threads(self, thread_id: str) -> object:
        """After an answer: a new thread joins the list, and stays selected."""
        return gr.update(choices=thread_choices(self.svc), value=thread_id or None)

    def threads_now(self) -> object:
        """On page load: the threads as they are now (other sessions, the CLI and the API add them too)."""
        return gr.update(choices=thread_choices(self.svc))

    def new_conversation(self) -> tuple[object, ...]:
        """An empty chat; the next question starts a new thread."""
        return [], SOURCES_PLACEHOLDER, "", gr.update(choices=thread_choices(self.svc), value=None)

    def open_thread(
        self, thread_id: str | None, model_value: str, k_value: float, mode_value: str, temp: float
    ) -> tuple[object, ...]:
        """Show a past conversation; the session's model reads it, since threads live in the agent's memory."""
        if not thread_id:
            return [], SOURCES_PLACEHOLDER, ""
        try:
            turns = self.svc.history(thread_id, session_choices(self.defaults, model_value, k_value, mode_value, temp))
        except Exception as exc:  # e.g. the model can't be built here: say so, keep the page
            gr.Warning(f"Could not open that conversation: {exc}")
            return gr.skip(), gr.skip(), gr.skip()
        shown, names, addresses = self.svc.turns.of(thread_id), self.svc.display_names(), Addresses(lambda: self.svc.kb)
        answers = [shown[text.strip()] for role, text in turns if role != "user" and text.strip() in shown]
        last = answers[-1] if answers else None
        panel = SOURCES_PLACEHOLDER
        if last is not None:
            links = addresses.of([*last.cited, *last.retrieved])
            panel = chat_format.sources_markdown(last.cited, last.retrieved, names, last.web, links)
        return chat_format.history_messages(turns, shown, names, addresses), panel, thread_id

    def remove_thread(self, thread_id: str) -> tuple[object, ...]:
        """Forget the open conversation and start an empty one."""
        if thread_id:
            self.svc.threads.delete(thread_id)
            self.svc.turns.delete(thread_id)
            gr.Info("Conversation deleted.")
        return self.new_conversation()


@dataclass
class ChatTab:
    """The tab's components that handlers read or write."""

    new_chat: gr.Button
    thread_list: gr.Dropdown
    delete_thread: gr.Button
    model: gr.Dropdown
    chatbot: gr.Chatbot
    question: gr.Textbox
    ask: gr.Button
    stop: gr.Button
    asked: gr.Textbox
    sources: gr.Markdown
    web: gr.Checkbox


def build(handlers: ChatHandlers, models: list[ModelChoice]) -> ChatTab:
    """Lay out the tab (inside `gr.Tabs`): conversations and model on the left, chat, sources on the right."""
    with gr.Tab("Chat", id="chat"), gr.Row(elem_id="chat-row"):
        with gr.Column(scale=1, min_width=220, elem_id="chat-side"), gr.Accordion("Conversations", open=True):
            new_chat = gr.Button("New chat", variant="primary", elem_id="new-chat")
            thread_list = gr.Dropdown(
                label="Past conversations", choices=thread_choices(handlers.svc), value=None, elem_id="threads"
            )
            delete_thread = gr.Button("Delete this conversation", size="sm", elem_id="delete-thread")
            model = gr.Dropdown(
                label="Model",
                choices=model_values(handlers.defaults, models),
                value=handlers.defaults.model,
                allow_custom_value=True,
                info="Pick one, or type provider:model; which run here: Settings.",
                elem_id="model",
            )
        with gr.Column(scale=3, elem_id="chat-main"):
            chatbot = gr.Chatbot(
                label="Conversation",
                show_label=False,
                height=560,
                buttons=["copy", "copy_all"],
                placeholder="Ask a question about the knowledge base. Answers cite passages as [n].",
                elem_id="chatbot",
            )
            with gr.Row(elem_id="ask-row"):
                question = gr.Textbox(
                    placeholder="Ask about your documents…",
                    show_label=False,
                    lines=1,
                    max_lines=6,
                    scale=6,
                    elem_id="question",
                )
                ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                stop = gr.Button("Stop", variant="stop", scale=1, min_width=80, visible=False, elem_id="stop")
            web = gr.Checkbox(
                label="Search the web too",
                value=False,
                visible=handlers.svc.web_search_offered,  # only where a provider is configured
                info="Sends the question to the web search provider set by KBAGENT_WEB_SEARCH.",
                elem_id="web-search",
            )
            asked = gr.Textbox(visible=False, elem_id="asked")  # the question being answered (the /chat input)
        with gr.Column(scale=2, min_width=260, elem_id="chat-sources"):
            gr.Markdown("### Sources")
            sources = gr.Markdown(SOURCES_PLACEHOLDER, elem_id="sources-panel", buttons=["copy"])
            gr.HTML(PANEL_HTML, elem_id="kb-viewer-holder", padding=False)  # the cited source, fixed over the side
    return ChatTab(new_chat, thread_list, delete_thread, model, chatbot, question, ask, stop, asked, sources, web)


def wire(tab: ChatTab, handlers: ChatHandlers, thread_state: gr.State, session: SettingsTab) -> None:
    """Connect the handlers; after every tab is laid out, since answers use the Settings tab's controls. A question
    goes through `take` (the box empties, Ask waits, Stop shows), then `chat`, then `finish`. Stop ends a running
    `chat` through its Feed and waits for it; only then does Gradio cancel, which drops a `chat` still queued."""
    busy = gr.State(False)
    web = gr.State(False)  # the web switch as a State: the /chat endpoint's inputs stay what API clients send
    tab.web.change(lambda on: bool(on), tab.web, web, api_visibility="private", show_progress="hidden")
    chat_inputs = [tab.asked, tab.chatbot, thread_state, tab.model, session.k, session.mode, session.temperature, web]
    after = [tab.thread_list, tab.ask, tab.stop, busy]
    answers = []
    for trigger in (tab.question.submit, tab.ask.click):
        taken = trigger(
            handlers.take,
            [tab.question, busy],
            [tab.asked, tab.question, tab.ask, tab.stop, busy],
            api_visibility="private",
            show_progress="hidden",
        )
        answer = taken.success(
            handlers.chat,
            chat_inputs,
            [tab.chatbot, tab.sources, thread_state],
            api_visibility="undocumented",
            concurrency_limit=CHAT_CONCURRENCY,
            concurrency_id="chat",
            show_progress="hidden",
        )
        answer.then(handlers.finish, thread_state, after, api_visibility="private", show_progress="hidden")
        answers.append(answer)
    stopped = tab.stop.click(handlers.stop, thread_state, after, api_visibility="private", concurrency_limit=None)
    stopped.then(None, None, None, cancels=answers, api_visibility="private")
    conversation = [tab.chatbot, tab.sources, thread_state, tab.thread_list]
    tab.new_chat.click(handlers.new_conversation, None, conversation, api_visibility="private")
    tab.thread_list.input(
        handlers.open_thread,
        [tab.thread_list, tab.model, session.k, session.mode, session.temperature],
        [tab.chatbot, tab.sources, thread_state],
        api_visibility="private",
    )
    tab.delete_thread.click(handlers.remove_thread, thread_state, conversation, api_visibility="private")


def thread_choices(svc: Services) -> list[tuple[str, str]]:
    """The 50 most recent threads as (label, id) dropdown choices."""
    return [(chat_format.thread_label(t), t.thread_id) for t in svc.threads.list(50, kb=svc.kb.id)]


def model_values(defaults: SessionChoices, models: list[ModelChoice]) -> list[str]:
    """The configured model first, then every usable one; placeholders like `anthropic:<model>` can't be picked."""
    return list(dict.fromkeys([defaults.model, *(m.spec for m in models if m.usable and "<" not in m.spec)]))
