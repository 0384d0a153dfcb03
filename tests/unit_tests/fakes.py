"""An in-memory W&B endpoint for unit tests: httpx.MockTransport, no sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Responder = Callable[[httpx.Request], httpx.Response]


def completion(
    content: str = "Hello!",
    *,
    model: str = "meta-llama/Llama-3.1-8B-Instruct",
    reasoning: str | None = None,
    reasoning_field: str = "reasoning",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Chat Completions body as W&B documents it."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, reasoning_field: reasoning},
                "finish_reason": "stop",
            }
        ],
        "usage": usage or {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def sse(chunks: list[dict[str, Any]]) -> bytes:
    """A server-sent-events body ending in ``[DONE]``."""
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def stream_chunks(
    words: list[str],
    *,
    reasoning: list[str] = (),
    model: str = "m",  # type: ignore[assignment]
) -> list[dict[str, Any]]:
    """Chunks of a streamed answer: reasoning deltas, content deltas, finish, usage."""
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": model}
    deltas = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning": piece} for piece in reasoning]
    deltas += [{"content": word} for word in words]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 4,
                "completion_tokens": len(words),
                "total_tokens": 4 + len(words),
            },
        }
    )
    return chunks


@dataclass
class FakeWB:
    """Records every request; answers with ``responders`` in turn (the last one repeats)."""

    responders: list[Responder] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        index = min(len(self.requests), len(self.responders)) - 1
        return self.responders[index](request)

    def clients(self) -> dict[str, Any]:
        """``http_client`` / ``http_async_client`` kwargs for ChatWBInference."""
        transport = httpx.MockTransport(self)
        return {
            "http_client": httpx.Client(transport=transport),
            "http_async_client": httpx.AsyncClient(transport=transport),
        }

    def body(self, index: int = -1) -> dict[str, Any]:
        """The JSON body of a recorded request."""
        parsed: dict[str, Any] = json.loads(self.requests[index].content)
        return parsed


def json_response(body: dict[str, Any], status: int = 200, **headers: str) -> Responder:
    """Always this JSON answer."""
    return lambda _request: httpx.Response(status, json=body, headers=headers)


def sse_response(chunks: list[dict[str, Any]]) -> Responder:
    """Always this streamed answer."""
    return lambda _request: httpx.Response(
        200, content=sse(chunks), headers={"content-type": "text/event-stream"}
    )
