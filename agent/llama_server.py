"""Serve a Qwen-family GGUF over llama.cpp's OpenAI-compatible server with tool calls that work, for the
tool-calling path (`KBAGENT_MODEL=openai:NAME`, `OPENAI_BASE_URL=http://HOST:PORT/v1`).

llama-cpp-python's own `chatml-function-calling` format mangles plain answers, arguments and tool results, so
this handler speaks the model's own format instead: messages and tools are rendered with the GGUF's chat
template, and the `<tool_call>{"name": …, "arguments": {…}}</tool_call>` the model writes becomes an OpenAI
`tool_calls` entry. Plain text streams as it is generated; once the model opens a `<tool_call>`, the call is
generated under a grammar built from the tools' JSON schemas, so it always parses. One call per turn.
Small models that won't call a tool on their own can be made to start each new question with one
(`--tool-first`): which tool and what arguments stay the model's choice, under the grammar.

    kbagent serve-model PATH.gguf [--host 127.0.0.1] [--port 8080] [--alias NAME] [--tool-first] [--api-key KEY]
    python -m agent.llama_server PATH.gguf [the same options, and --n-ctx, --threads]

No web page may use it: llama-cpp-python's server allows every origin (with credentials), which is dropped here.
`--api-key`: clients must send it as their Bearer token (OPENAI_API_KEY for kbagent); without it anything that
can reach the port can use the model.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar
    from llama_cpp.llama_chat_format import ChatFormatterResponse
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

HANDLER_NAME = "kbagent-gguf-tools"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "presence_penalty", "frequency_penalty")


def handle_chat(llama: Llama, messages: list[dict[str, Any]], tool_first: bool = False, **request: Any) -> Any:
    """A llama-cpp-python chat-completion handler: the non-streamed response, or an iterator of chunks.
    `tool_first`: a turn that answers a user's message starts with a tool call (see `serve`)."""
    choice = request.get("tool_choice") or "auto"
    tools = [] if choice == "none" else list(request.get("tools") or [])
    if isinstance(choice, dict):
        tools = [t for t in tools if t["function"]["name"] == choice.get("function", {}).get("name")]
    forced = bool(tools) and (
        choice == "required" or isinstance(choice, dict) or (tool_first and _new_question(messages))
    )
    prompt = _formatter(llama)(messages=[_for_template(m) for m in messages], tools=tools or None).prompt
    sampling = {k: request[k] for k in SAMPLING if request.get(k) is not None}
    sampling["stop"] = _as_list(request.get("stop"))
    sampling["max_tokens"] = request.get("max_tokens")
    if forced:
        items: Iterator[tuple[str, Any]] = iter(
            [("call", _constrained_call(llama, f"{prompt}{CALL_OPEN}\n", tools, sampling))]
        )
    else:
        items = _turn(llama, prompt, tools, sampling)
    reply_id, model = f"chatcmpl-{uuid.uuid4().hex[:12]}", request.get("model") or "local"
    if request.get("stream"):
        return _chunks(items, reply_id, model)
    text, calls = "", []
    for kind, value in items:
        if kind == "text":
            text += value
        else:
            calls.append(value)
    message: dict[str, Any] = {"role": "assistant", "content": text.strip() or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else "stop"
    choice_out = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice_out],
    }


def _new_question(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and messages[-1].get("role") == "user"


def _turn(
    llama: Llama, prompt: str, tools: list[dict[str, Any]], sampling: dict[str, Any]
) -> Iterator[tuple[str, Any]]:
    """The assistant's turn as ("text", piece) and ("call", tool_call) items."""
    markers = [*sampling["stop"], *([CALL_OPEN] if tools else [])]
    said, held = "", ""
    for piece in _generate(llama, prompt, sampling):
        held += piece
        found = min(((held.find(m), m) for m in markers if m in held), default=None)
        if found is not None:
            said += held[: found[0]]
            if held[: found[0]]:
                yield "text", held[: found[0]]
            if found[1] != CALL_OPEN:  # a stop string
                return
            yield "call", _constrained_call(llama, f"{prompt}{said}{CALL_OPEN}\n", tools, sampling)
            return
        keep = max(_partial(held, m) for m in markers) if markers else 0  # what may begin a marker waits
        if len(held) > keep:
            said += held[: len(held) - keep]
            yield "text", held[: len(held) - keep]
            held = held[len(held) - keep :]
    if held:
        yield "text", held


def _generate(
    llama: Llama, prompt: str, sampling: dict[str, Any], grammar: LlamaGrammar | None = None
) -> Iterator[str]:
    """Text pieces, special tokens written out (Qwen's `<tool_call>` is one), until an end-of-generation token or
    the token budget; llama.cpp reuses the cached state of the prompt's longest known prefix."""
    import codecs

    import llama_cpp

    tokens = llama.tokenize(prompt.encode(), add_bos=False, special=True)
    budget = sampling.get("max_tokens") or 0
    budget = min(budget, llama.n_ctx() - len(tokens)) if budget > 0 else llama.n_ctx() - len(tokens)
    if sampling.get("seed") is not None:
        llama.set_seed(sampling["seed"])
    options = {key: sampling[name] for name, key in _GENERATE_OPTIONS.items() if name in sampling}
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for n, token in enumerate(llama.generate(tokens, grammar=grammar, **options)):
        if n >= budget or llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
            return
        yield decoder.decode(llama.detokenize([token], special=True))


_GENERATE_OPTIONS = {
    "temperature": "temp",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}


def _constrained_call(llama: Llama, prompt: str, tools: list[dict[str, Any]], sampling: dict[str, Any]) -> dict:
    """The call the model opened, generated again under the tools' grammar: it always parses, names a tool
    offered and carries arguments of that tool's schema."""
    text = "".join(_generate(llama, prompt, sampling, _grammar(json.dumps(tools, sort_keys=True))))
    call = json.loads(text)
    arguments = json.dumps(call["arguments"], ensure_ascii=False)
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    return {"id": call_id, "type": "function", "function": {"name": call["name"], "arguments": arguments}}


@cache
def _grammar(tools_json: str) -> LlamaGrammar:
    from llama_cpp import LlamaGrammar

    calls = []
    for tool in json.loads(tools_json):
        function = tool["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        calls.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return LlamaGrammar.from_json_schema(json.dumps({"anyOf": calls}), verbose=False)


def _chunks(items: Iterator[tuple[str, Any]], reply_id: str, model: str) -> Iterator[dict[str, Any]]:
    """The same turn as OpenAI stream chunks: the role, text deltas, then the tool call whole, then the finish."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }

    yield chunk({"role": "assistant", "content": ""})
    called = False
    for kind, value in items:
        if kind == "text":
            yield chunk({"content": value})
        else:
            called = True
            yield chunk({"tool_calls": [{"index": 0, **value}]})
    yield chunk({}, "tool_calls" if called else "stop")


def _for_template(message: dict[str, Any]) -> dict[str, Any]:
    """Chat templates (like transformers) take a call's arguments as an object; the OpenAI API sends a string."""
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts: the template takes text
        message = {**message, "content": "".join(p.get("text", "") for p in content if isinstance(p, dict))}
    calls = message.get("tool_calls")
    if not calls:
        return {**message, "content": message.get("content") or ""}
    converted = []
    for call in calls:
        function = dict(call.get("function") or {})
        if isinstance(function.get("arguments"), str):
            with contextlib.suppress(json.JSONDecodeError):
                function["arguments"] = json.loads(function["arguments"] or "{}")
        converted.append({**call, "function": function})
    return {**message, "tool_calls": converted}


def _partial(text: str, marker: str) -> int:
    """How many characters at the end of `text` could begin `marker`."""
    return next((n for n in range(min(len(text), len(marker) - 1), 0, -1) if marker.startswith(text[-n:])), 0)


def _as_list(stop: str | list[str] | None) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


def _formatter(llama: Llama) -> Callable[..., ChatFormatterResponse]:
    """The GGUF's own chat template, called with OpenAI-style message dicts (as `handle_chat` gets them)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError("this GGUF has no chat template (tokenizer.chat_template)")
    special = _special_text(llama)
    return Jinja2ChatFormatter(template, eos_token=special["eos"], bos_token=special["bos"])


def _special_text(llama: Llama) -> dict[str, str]:
    def text(token: int) -> str:
        return llama.detokenize([token], special=True).decode(errors="ignore") if token >= 0 else ""

    return {"eos": text(llama.token_eos()), "bos": text(llama.token_bos())}


def serve(
    path: str,
    host: str,
    port: int,
    alias: str,
    n_ctx: int,
    threads: int,
    tool_first: bool,
    api_key: str | None = None,
) -> None:
    """llama-cpp-python's OpenAI-compatible server (its app, under uvicorn) with this handler for `path`, without
    its allow-every-origin CORS, behind `api_key` when one is given."""
    from functools import partial

    import uvicorn
    from fastapi.middleware.cors import CORSMiddleware
    from llama_cpp.llama_chat_format import register_chat_completion_handler
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    register_chat_completion_handler(HANDLER_NAME)(partial(handle_chat, tool_first=tool_first))
    model = ModelSettings(
        model=path,
        model_alias=alias,
        chat_format=HANDLER_NAME,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=True,
        verbose=False,
    )
    app = create_app(server_settings=ServerSettings(host=host, port=port, api_key=api_key), model_settings=[model])
    app.user_middleware = [m for m in app.user_middleware if m.cls is not CORSMiddleware]  # built at first request
    uvicorn.run(NullContentAccepted(app), host=host, port=port, log_level="warning")


class NullContentAccepted:
    """ASGI wrapper: llama-cpp-python's request model refuses `"content": null`, which OpenAI clients (LangChain
    among them) send with an assistant message's tool calls; it becomes "" before the request is validated."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            request = json.loads(body)
            for item in request.get("messages") or []:
                if isinstance(item, dict) and item.get("content", "") is None:
                    item["content"] = ""
            body = json.dumps(request).encode()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return dict(await receive())
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


def main(argv: list[str] | None = None) -> None:
    import argparse
    import os
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m agent.llama_server", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a GGUF file whose chat template writes <tool_call> (Qwen2.5 and kin)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--alias", help="the model name clients use (default: the file's name)")
    parser.add_argument("--n-ctx", type=int, default=4096, help="context window, in tokens")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tool-first", action="store_true", help="answer each new question with a tool call first")
    parser.add_argument("--api-key", help="the Bearer token clients must send (default: none, anyone who can connect)")
    args = parser.parse_args(argv)
    alias = args.alias or Path(args.path).stem
    serve(args.path, args.host, args.port, alias, args.n_ctx, args.threads, args.tool_first, args.api_key)


if __name__ == "__main__":
    main()
