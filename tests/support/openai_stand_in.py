"""A stand-in for an OpenAI-compatible provider (Anthropic's, Gemini's and DeepSeek's compatibility endpoints)
on 127.0.0.1: it records every request and answers `POST …/chat/completions`, streamed or not as the client
asks. With tools offered and no tool result yet, it calls the first tool once; then it answers in words."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = "A Family membership costs $70 per year [1]."


@dataclass
class Recorded:
    path: str
    authorization: str
    body: dict[str, Any]


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message for `body`: a call of the first tool offered, or the answer once a tool has run."""
    tools = body.get("tools") or []
    if tools and not any(m.get("role") == "tool" for m in body["messages"]):
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": tools[0]["function"]["name"], "arguments": json.dumps({"query": "Family price"})},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": "assistant", "content": ANSWER}


def _chunks(model: str, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "c-1", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]}

    if message.get("tool_calls"):
        calls = [{"index": 0, **call} for call in message["tool_calls"]]
        yield chunk({"role": "assistant", "content": None, "tool_calls": calls})
        yield chunk({}, "tool_calls")
        return
    yield chunk({"role": "assistant", "content": ""})
    first, *rest = message["content"].split(" ")
    for word in [first, *(f" {w}" for w in rest)]:  # streamed word by word
        yield chunk({"content": word})
    yield chunk({}, "stop")


@contextmanager
def openai_stand_in() -> Iterator[tuple[str, list[Recorded]]]:
    """The base URL to give a client (`http://127.0.0.1:PORT/v1`) and the requests it has received."""
    requests: list[Recorded] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(Recorded(self.path, self.headers.get("Authorization", ""), body))
            if not self.path.endswith("/chat/completions"):
                self.send_error(404)
                return
            message = _reply(body)
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in _chunks(body["model"], message):
                    self.wfile.write(f"data: {json.dumps(piece)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                return
            finish = "tool_calls" if message.get("tool_calls") else "stop"
            data = json.dumps(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
