"""kbagent as an OpenAI-compatible "model": `GET /v1/models` and `POST /v1/chat/completions` (streamed or not),
served beside the app with `kbagent serve --openai` (KBAGENT_OPENAI_API=on), behind the same login.

Each request's last user message is the question; the messages before it are the conversation so far (the client
keeps it, so each answer runs in a thread of its own, deleted after). System messages are not used: kbagent has
its own prompt. The answer's citations travel in the text ("Sources:" after the answer) and as data in the
response's extra `kbagent` field: `{"answer", "sources", "retrieved", "unsupported", "model", "seconds"}`, on the
completion, or on the last chunk of a stream. Errors are OpenAI-style error objects.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent.events import Done, Error, Event, Sources, Token
from kbagent.errors import KbagentError
from ui.cited import sources_block
from ui.services import CHAT_CONCURRENCY, MAX_QUESTION_CHARS, Services, SessionChoices

PREFIX = "/v1"
DEFAULT_MODEL = "kbagent"  # the configured model
MAX_BODY_BYTES = 1_000_000
MAX_MESSAGES = 200


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: only text parts carry anything for us
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
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

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "api_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def model_ids(svc: Services) -> list[str]:
    """`kbagent` (the configured model), then every model `kbagent models` lists as usable here by name."""
    from agent.hub import pulled_models

    configured = svc.settings.agent.model or "embedded"
    usable = [c.spec for c in svc.models if c.usable and "<" not in c.spec]
    pulled = [f"gguf:{path}" for path in pulled_models(svc.settings.store.models_path)]
    return list(dict.fromkeys([DEFAULT_MODEL, configured, *usable, *pulled]))


class OpenAIApi:
    """The endpoints over the app's services: the same model policy, question limit and concurrency as its chat."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.defaults = svc.default_choices()
        self.answers = threading.BoundedSemaphore(CHAT_CONCURRENCY)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/models", self.models, methods=["GET"]),
                Route("/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    async def models(self, request: Request) -> Response:
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "kbagent"} for m in model_ids(self.svc)]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        try:
            body = await _read_body(request)
            chat = ChatRequest.model_validate(body)
            question, earlier = _conversation(chat.messages)
            choices = self._choices(chat)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(part) for part in first["loc"]) or None
            return ApiError(400, f"{param}: {first['msg']}", param).response()
        except ApiError as exc:
            return exc.response()
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        events = self._events(question, earlier, choices)
        if chat.stream:
            chunks = _stream_chunks(events, completion_id, chat.model)
            return StreamingResponse(chunks, media_type="text/event-stream")
        try:
            return JSONResponse(await anyio.to_thread.run_sync(_completion, events, completion_id, chat.model))
        except ApiError as exc:
            return exc.response()

    def _choices(self, chat: ChatRequest) -> SessionChoices:
        """The session choices for this request; a model app users may not have is 404 model_not_found."""
        model = self.defaults.model if chat.model == DEFAULT_MODEL else chat.model
        try:
            self.svc.allowed_model(model)
        except KbagentError as exc:
            raise ApiError(
                404, f"the model {chat.model!r} does not exist here: {exc}", "model", "model_not_found"
            ) from exc
        changes: dict[str, Any] = {"model": model}
        if chat.temperature is not None:
            changes["temperature"] = chat.temperature
        return replace(self.defaults, **changes)

    def _events(self, question: str, earlier: list[tuple[str, str]], choices: SessionChoices) -> Iterator[Event]:
        """The answer's events, one of CHAT_CONCURRENCY answers at a time (a later one waits its turn)."""
        with self.answers:
            yield from self.svc.stream_detached(question, earlier, choices)


async def _read_body(request: Request) -> Any:
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


def _conversation(messages: list[Message]) -> tuple[str, list[tuple[str, str]]]:
    """The question (the last message, a user's) and the user and assistant turns before it."""
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
    return question, earlier


def _extra(done: Done, sources: Sources | None) -> dict[str, Any]:
    """The documented `kbagent` field: the answer and its passages as data."""
    return {
        "answer": done.answer,
        "sources": [p.as_dict() for p in sources.cited] if sources else [],
        "retrieved": [p.as_dict() for p in sources.retrieved] if sources else [],
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


def _completion(events: Iterator[Event], completion_id: str, model: str) -> dict[str, Any]:
    sources: Sources | None = None
    done: Done | None = None
    for event in _finished(events):
        if isinstance(event, Sources):
            sources = event
        elif isinstance(event, Done):
            done = event
    assert done is not None
    block = sources_block([p.as_dict() for p in sources.cited] if sources else [])
    text = f"{done.answer.strip()}\n\n{block}" if block else done.answer.strip()
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": _usage(done),
        "kbagent": _extra(done, sources),
    }


def _stream_chunks(events: Iterator[Event], completion_id: str, model: str) -> Iterator[str]:
    """Server-sent events: the answer's words as they come, then its sources block, then a last chunk with
    `finish_reason` and the `kbagent` field. An answer the agent replaced at the end (its core claim backed by no
    source) streams the replacement after what was already sent."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
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
                block = sources_block([p.as_dict() for p in sources.cited] if sources else [])
                if block:
                    yield chunk({"content": "\n\n" + block})
                yield chunk({}, "stop", usage=_usage(event), kbagent=_extra(event, sources))
    except ApiError as exc:
        yield f"data: {json.dumps(exc.body())}\n\n"
    yield "data: [DONE]\n\n"


def done_text_continues(sent: str, answer: str) -> bool:
    """Whether the final answer is what was streamed (spacing aside): nothing more to send."""
    return " ".join(sent.split()) == " ".join(answer.split())
