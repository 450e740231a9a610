"""kbagent as an OpenAI-compatible "model": `GET /v1/models` and `POST /v1/chat/completions` (streamed or not),
served beside the app with `kbagent serve --openai` (KBAGENT_OPENAI_API=on), behind the same login.

A request's `model` picks the knowledge base and the language model (`parse_model_id`): `kbagent` is the default
knowledge base, `kbagent/NAME` knowledge base NAME, each on its configured model, and `kbagent/NAME:PROVIDER:MODEL`
(or a language model alone, for the default knowledge base) names another model.

Each request's last user message is the question; the messages before it are the conversation so far (the client
keeps it, so each answer runs in a thread of its own, deleted after). System messages are not used: kbagent has
its own prompt. The answer's citations travel in the text ("Sources:" after the answer) and as data in the
response's extra `kbagent` field: `{"answer", "sources", "retrieved", "unsupported", "model", "seconds"}`, on the
completion, or on the last chunk of a stream; each passage with its `source_id`, `chunk_id`, `location` and, with
KBAGENT_PUBLIC_URL, its absolute `address`, which the text's source line carries too (`cited.Citations`).
Errors are OpenAI-style error objects.

Each answer runs in a worker thread (`Services.answer_detached`); a response only reads its events. A client that
hangs up closes the answer (the model is free at its next token), a client that stops reading loses it after
KBAGENT_ANSWER_STALL_S, and one client may hold only KBAGENT_ANSWERS_PER_CLIENT answers (429 beyond).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Literal, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.events import Done, Error, Event, Sources, Token
from kbagent.errors import KbagentError
from kbagent.frontends.cited import Citations, addresses, sources_block
from kbagent.services.answering import Busy, Feed, client_of
from kbagent.services.operations import MAX_QUESTION_CHARS, Services, SessionChoices

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

T = TypeVar("T")
PREFIX = "/v1"
DEFAULT_MODEL = "kbagent"  # the default knowledge base, on its configured model
KB_PREFIX = DEFAULT_MODEL + "/"  # `kbagent/NAME`: knowledge base NAME; `kbagent/NAME:PROVIDER:MODEL`: on that model
MAX_BODY_BYTES = 1_000_000
MAX_MESSAGES = 200


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, object]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts carry anything for us
            return "".join(
                text for p in self.content if p.get("type") == "text" and isinstance(text := p.get("text"), str)
            )
        return self.content or ""


class ChatRequest(BaseModel):
    """What we read of a chat completion request; other fields (max_tokens, tools, …) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=500)
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def body(self) -> dict[str, object]:
        kind = "invalid_request_error" if self.status < 500 else "api_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def model_ids(svc: Services) -> list[str]:
    """`kbagent` (the default knowledge base on its configured model), `kbagent/NAME` for each knowledge base,
    then every model `kbagent models` lists as usable here by name (the default knowledge base on that model)."""
    from agent.hub import pulled_models

    configured = svc.settings.agent.model or "embedded"
    kbs = [f"{KB_PREFIX}{kb['name']}" for kb in svc.knowledge_bases()]
    usable = [c.spec for c in svc.models if c.usable and "<" not in c.spec]
    pulled = [f"gguf:{path}" for path in pulled_models(svc.settings.store.models_path)]
    return list(dict.fromkeys([DEFAULT_MODEL, *kbs, configured, *usable, *pulled]))


def parse_model_id(model: str) -> tuple[str | None, str | None]:
    """A request's `model` as (knowledge base name, language model), None where it names none (the default
    knowledge base; its configured model): `kbagent`, `kbagent/NAME`, `kbagent/NAME:PROVIDER:MODEL`, or a
    language model alone (`PROVIDER:MODEL`, `embedded`). A name holds no `:` or `/`, so the first `:` after it
    starts the model."""
    if model == DEFAULT_MODEL:
        return None, None
    if model.startswith(KB_PREFIX):
        name, colon, spec = model.removeprefix(KB_PREFIX).partition(":")
        return name, (spec if colon else None)
    return None, model


class OpenAIApi:
    """The endpoints over the app's services: the same model policy, question limit and answer slots as its chat."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.history_chars = svc.settings.app.openai_history_chars
        self.public_url = svc.settings.viewer.public_url

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/models", self.models, methods=["GET"]),
                Route("/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    async def models(self, request: Request) -> Response:
        created = int(time.time())
        ids = await anyio.to_thread.run_sync(model_ids, self.svc)
        data = [{"id": m, "object": "model", "created": created, "owned_by": "kbagent"} for m in ids]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        try:
            chat = await _chat_request(request)
            question, earlier = _conversation(chat.messages, self.history_chars)
            choices = await anyio.to_thread.run_sync(self._choices, chat)
            feed = self.svc.answer_detached(question, earlier, choices, client_of(request))
            cite = Citations(self.svc.knowledge_base(choices.kb or None), self.public_url)  # its passages' places
        except RecursionError:
            return ApiError(400, "the request is nested too deeply").response()
        except Busy as exc:
            return ApiError(429, str(exc), None, "rate_limit_exceeded").response()
        except ApiError as exc:
            return exc.response()
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if chat.stream:
            return AnswerStream(feed, _stream_chunks(feed, completion_id, chat.model, cite))
        with feed:
            try:
                done = await _unless_gone(request, feed, lambda: _completion(feed, completion_id, chat.model, cite))
            except ApiError as exc:
                return exc.response()
        return JSONResponse(done)

    def _choices(self, chat: ChatRequest) -> SessionChoices:
        """This request's choices (`parse_model_id`): its knowledge base with that one's settings, looked up now
        (nothing is kept between requests). An unknown knowledge base, or a model app users may not have, is 404
        model_not_found."""
        name, model = parse_model_id(chat.model)
        try:
            defaults = self.svc.kb_choices(name)
            choices = replace(defaults, model=model or defaults.model)
            self.svc.allowed_model(choices.model, choices.kb)
        except KbagentError as exc:
            problem = str(exc).replace("`kbagent kb list` shows", "GET /v1/models lists")
            raise ApiError(
                404, f"the model {chat.model!r} does not exist here: {problem}", "model", "model_not_found"
            ) from exc
        return choices if chat.temperature is None else replace(choices, temperature=chat.temperature)


class AnswerStream(StreamingResponse):
    """Server-sent events of an answer that stops when its client goes: the disconnect is watched for while the
    answer is written (a server notices one only at its next write otherwise), and the feed is closed however the
    response ends."""

    def __init__(self, feed: Feed, chunks: Iterator[str]) -> None:
        super().__init__(chunks, media_type="text/event-stream")
        self.feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.feed:
            async with anyio.create_task_group() as group:

                async def until_gone() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                async def write() -> None:
                    with contextlib.suppress(OSError):  # the client went while a chunk was being sent
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(until_gone)
                group.start_soon(write)


async def _unless_gone(request: Request, feed: Feed, work: Callable[[], T]) -> T:
    """`work` (which reads `feed`) in a worker thread; a client that hangs up meanwhile closes the feed, so its
    answer stops at the model's next token."""
    outcome: list[T | ApiError] = []

    async with anyio.create_task_group() as group:

        async def until_gone() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            feed.close()

        group.start_soon(until_gone)
        try:
            outcome.append(await anyio.to_thread.run_sync(work))
        except ApiError as exc:
            outcome.append(exc)
        group.cancel_scope.cancel()
    first = outcome[0]
    if isinstance(first, ApiError):
        raise first
    return first


async def _chat_request(request: Request) -> ChatRequest:
    """The request, read and checked: JSON only (a browser page can send a form or text/plain to any address
    without asking first, never JSON), and bounded in size. (Nested too deeply, it raises RecursionError.)"""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, "send the request body as Content-Type: application/json", None, "unsupported_media_type")
    try:
        return ChatRequest.model_validate(await _read_body(request))
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}", param) from None


async def _read_body(request: Request) -> object:
    """The JSON body, read up to MAX_BODY_BYTES: a larger one is 413 before it is all in memory."""
    size = 0
    parts = []
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"the request is over {MAX_BODY_BYTES} bytes", None, "request_too_large")
        parts.append(part)
    try:
        return json.loads(b"".join(parts) or b"null")
    except ValueError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from exc


def _conversation(messages: list[Message], limit: int) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, a user's) and the user and assistant turns before it, `limit` characters
    in all (each is read by the model: a long history is paid for in every answer)."""
    last = messages[-1]
    question = last.text().strip()
    if last.role != "user" or not question:
        raise ApiError(400, "the last message must be the user's question, with text", "messages")
    if len(question) > MAX_QUESTION_CHARS:
        raise ApiError(
            400, f"the question is over {MAX_QUESTION_CHARS} characters", "messages", "context_length_exceeded"
        )
    turns = [m for m in messages[:-1] if m.role in ("user", "assistant") and m.text().strip()]
    earlier: list[tuple[str, str]] = [(m.role, m.text()) for m in turns]
    if len(question) + sum(len(text) for _, text in earlier) > limit:
        raise ApiError(
            400,
            f"the conversation is over {limit} characters (KBAGENT_OPENAI_HISTORY_CHARS): send fewer or shorter "
            "earlier turns",
            "messages",
            "context_length_exceeded",
        )
    return question, earlier


def _extra(done: Done, cited: list[dict[str, object]], sources: Sources | None, cite: Citations) -> dict[str, object]:
    """The documented `kbagent` field: the answer and its passages as data (`cited`: `cite.data` of its cited
    passages), each with where it lies."""
    return {
        "answer": done.answer,
        "sources": cited,
        "retrieved": cite.data(sources.retrieved) if sources else [],
        "unsupported": [asdict(u) for u in done.unsupported],
        "model": done.model,
        "seconds": round(done.seconds, 3),
    }


def _usage(done: Done) -> dict[str, int]:
    prompt, completion = done.prompt_tokens or 0, done.completion_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finished(events: Iterator[Event]) -> Iterator[Event]:
    """The events, with the agent's error raised as a 502 and an answer that never finished as one too."""
    done = False
    for event in events:
        if isinstance(event, Error):
            raise ApiError(502, event.message, None, "answer_failed")
        done = done or isinstance(event, Done)
        yield event
    if not done:
        raise ApiError(502, "the agent stopped without an answer", None, "answer_failed")


def _completion(events: Iterator[Event], completion_id: str, model: str, cite: Citations) -> dict[str, object]:
    sources: Sources | None = None
    done: Done | None = None
    for event in _finished(events):
        if isinstance(event, Sources):
            sources = event
        elif isinstance(event, Done):
            done = event
    assert done is not None
    cited = cite.data(sources.cited) if sources else []
    block = sources_block(sources.cited if sources else [], addresses(cited))
    text = f"{done.answer.strip()}\n\n{block}" if block else done.answer.strip()
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": _usage(done),
        "kbagent": _extra(done, cited, sources, cite),
    }


def _stream_chunks(
    events: Iterator[Event], completion_id: str, model: str, cite: Citations | None = None
) -> Iterator[str]:
    """Server-sent events: the answer's words as they come, then its sources block, then a last chunk with
    `finish_reason` and the `kbagent` field. An answer the agent replaced at the end (its core claim backed by no
    source) streams the replacement after what was already sent."""
    created = int(time.time())
    cite = cite or Citations()

    def chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return f"data: {json.dumps({**body, 'choices': [choice], **extra}, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    sent, sources = "", None
    try:
        for event in _finished(events):
            if isinstance(event, Token) and event.text:
                sent += event.text
                yield chunk({"content": event.text})
            elif isinstance(event, Sources):
                sources = event
            elif isinstance(event, Done):
                if not done_text_continues(sent, event.answer):
                    yield chunk({"content": "\n\n" + event.answer.strip()})
                cited = cite.data(sources.cited) if sources else []
                block = sources_block(sources.cited if sources else [], addresses(cited))
                if block:
                    yield chunk({"content": "\n\n" + block})
                yield chunk({}, "stop", usage=_usage(event), kbagent=_extra(event, cited, sources, cite))
    except ApiError as exc:
        yield f"data: {json.dumps(exc.body())}\n\n"
    yield "data: [DONE]\n\n"


def done_text_continues(sent: str, answer: str) -> bool:
    """Whether the final answer is what was streamed (spacing aside): nothing more to send."""
    return " ".join(sent.split()) == " ".join(answer.split())
