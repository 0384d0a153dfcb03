"""A local emulator of the W&B Inference API, speaking the contract in ``wb-inference-api.md``.

Why: the real service cannot be reached from CI, costs money, and cannot be made to
fail on demand.  The emulator is a real HTTP/1.1 server on 127.0.0.1, so the client's
whole stack (``openai`` SDK, httpx, retries, timeouts) runs unmodified against it:

- ``POST /v1/chat/completions`` (JSON and SSE) and ``GET /v1/models``; anything else 404;
- auth (``Authorization: Bearer``), the optional ``OpenAI-Project`` header (401 if
  malformed or, when ``projects`` is given, not one of them);
- the catalog's served models (retired, unknown or wrong-case IDs 404), LoRA artifact
  IDs ``wandb-artifact:///team/project/name:version``;
- FastAPI's 422s for malformed requests (``testing.request``: pydantic models of the
  accepted request); the documented error bodies, and what engines and proxies send
  in the wild, as ``Fault``s;
- in-flight concurrency limits per (project, model) with the live 429 body;
- usage from a simple tokenizer, with prefix-cache hits (see ``Emulator``).

Answers come from a pluggable ``backend.Backend`` (``synthetic.SyntheticBackend`` by default).
Everything the server writes for one request goes out in a single ``write`` after the
request is recorded and its concurrency slot released, so a client that has its
answer always sees it in ``Emulator.requests`` and can send the next request at once.
Two faults are the exception, by design: ``Fault.drip`` spreads the answer over many
writes and ``Fault.keepalive`` writes comments until the emulator stops; both are
recorded (status 200) before their first byte goes out.
"""

from __future__ import annotations

import contextlib
import hashlib
import http
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from langchain_wandb_inference.testing.backend import (
    Backend,
    BackendError,
    ChatRequest,
    Completion,
    count_tokens,
    message_text,
)
from langchain_wandb_inference.testing.faults import Fault, concurrency_body
from langchain_wandb_inference.testing.request import unprocessable, validate
from langchain_wandb_inference.testing.synthetic import SyntheticBackend

logger = logging.getLogger(__name__)

_LORA = re.compile(r"wandb-artifact:///[^/\s]+/[^/\s]+/[^/:\s]+:[^/\s]+")
_PROJECT = re.compile(r"[^/\s]+/[^/\s]+")
_PIECE = re.compile(r"\s*\S+|\s+")
_PREFIX_MEMORY = 65536
_IMAGE_TOKENS = 85

_NOT_FOUND = b'{"error": {"code": 404, "message": "The requested resource was not found"}}'
_AUTH_FAILED = b'{"error": {"code": 401, "message": "Authentication failed"}}'
_AUTH_MISSING = json.dumps(
    {
        "error": {
            "code": "invalid_api_key",
            "message": "Missing bearer authentication in header",
            "type": "invalid_request_error",
        }
    }
).encode()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator saw it; ``status`` 0 means no answer was sent (hang)."""

    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: Any
    """Parsed JSON, or ``None`` (no body, or not JSON)."""
    model: str | None
    status: int
    started: float
    ended: float
    """``time.monotonic()`` values."""


@dataclass(frozen=True)
class _Profile:
    """What the server needs to know about a served model, precomputed per ID."""

    reasoning: str = "none"
    vision: bool = False
    prefix_cache: bool = False


@dataclass
class _Exchange:
    """Per-request state, filled in as the request is handled."""

    handler: _Handler
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    started: float
    body: Any = None
    model: str | None = None
    slot: tuple[str, str] | None = None
    """(project, model) while the request holds a concurrency slot."""
    generation: int = 0
    """The emulator's :meth:`~Emulator.reset` count when the request came in (or took
    its slot)."""


class Emulator:
    """W&B Inference on 127.0.0.1; a context manager running a background server thread.

    - ``api_key``: the one key accepted (``Authorization: Bearer <api_key>``).
    - ``projects``: accepted ``OpenAI-Project`` values (``None``: any ``team/project``;
      the header itself is optional, as in the 2026 docs).
    - ``models``: served IDs (``None``: every catalog model not retired, plus LoRA
      artifact IDs).  Reasoning mode, vision and cache pricing come from the catalog;
      IDs it does not know are plain text models.
    - ``latency``: seconds before every chat answer (counts as time in flight).
    - ``concurrency_limit``: max requests in flight per (project, model); beyond it the
      live 429 concurrency body.
    - ``legacy_reasoning_field``: name the reasoning field ``reasoning_content`` (the
      pre-April-2026 name) instead of ``reasoning``.
    - ``backend``: answer generator (default ``SyntheticBackend()``).
    - ``port``: TCP port on 127.0.0.1 (0: any free port; read ``base_url``).

    Prefix cache rule: for models with a cached-input price, when ``cache_salt`` is
    absent, ``usage.prompt_tokens_details.cached_tokens`` is the token count of the
    longest prefix (tools, then whole messages) this (project, model) was sent before
    (0 on a miss); other models omit ``prompt_tokens_details``.
    """

    def __init__(
        self,
        *,
        api_key: str = "emulator-key",
        projects: Collection[str] | None = None,
        models: Iterable[str] | None = None,
        latency: float = 0.0,
        concurrency_limit: int | None = None,
        backend: Backend | None = None,
        legacy_reasoning_field: bool = False,
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.projects = frozenset(projects) if projects is not None else None
        self.latency = latency
        self.concurrency_limit = concurrency_limit
        self.backend: Backend = backend if backend is not None else SyntheticBackend()
        self.port = port
        self._reasoning_key = "reasoning_content" if legacy_reasoning_field else "reasoning"
        self._serve_lora = models is None
        self._profiles = _profiles(models)
        self._models_body = json.dumps(
            {
                "object": "list",
                "data": [
                    {"id": i, "object": "model", "created": 0, "owned_by": "system", "root": i}
                    for i in self._profiles
                ],
            }
        ).encode()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._connections: set[socket.socket] = set()
        self._generation = 0
        self.reset()

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``; the server must be running."""
        if self._server is None:
            raise RuntimeError("Emulator is not running: call start() or use it as a context")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> Emulator:
        """Bind 127.0.0.1 (never another address) and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.emulator = self
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() may wait
            name="wb-inference-emulator",
            daemon=True,
        )
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (hung requests end at once)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- scripting and inspection ------------------------------------------------------

    def script(self, model: str, *faults: Fault) -> None:
        """Give the next ``len(faults)`` requests for ``model`` these faults, in order."""
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(faults)

    def always(self, model: str, fault: Fault | None) -> None:
        """Every request for ``model`` gets ``fault`` (after any scripted ones); None clears."""
        with self._lock:
            if fault is None:
                self._always.pop(model, None)
            else:
                self._always[model] = fault

    def reset(self) -> None:
        """Clear scripts, always-faults, the request log, counters and the prefix cache.

        A request still being answered (one held by ``Fault.hang``, say) belongs to
        the time before: it is neither logged nor counted when it ends.
        """
        with self._lock:
            self._generation += 1
            self._scripts: dict[str, deque[Fault]] = {}
            self._always: dict[str, Fault] = {}
            self._requests: list[RecordedRequest] = []
            self._in_flight: dict[tuple[str, str], int] = {}
            self._model_in_flight: dict[str, int] = {}
            self._max_in_flight: dict[str, int] = {}
            self._prefixes: dict[tuple[str, str], set[bytes]] = {}

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def max_in_flight_seen(self) -> dict[str, int]:
        """Per model, the most requests that were in flight at once (all projects)."""
        with self._lock:
            return dict(self._max_in_flight)

    def count(self, model: str | None = None, status: int | None = None) -> int:
        """Count logged requests, optionally only those for ``model`` and/or with ``status``."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (model is None or r.model == model) and (status is None or r.status == status)
            )

    # --- request handling --------------------------------------------------------------

    def _handle(self, x: _Exchange) -> None:
        x.generation = self._generation
        answer = _Answer(0)
        try:
            if x.path == "/v1/chat/completions" and x.method == "POST":
                answer = self._chat(x)
            elif x.path == "/v1/models" and x.method == "GET":
                status, body = self._auth(x.headers) or (200, self._models_body)
                answer = _Answer(status, _http(status, body))
            else:
                answer = _Answer(404, _http(404, _NOT_FOUND))
        except Exception:
            logger.exception("emulator failed on %s %s", x.method, x.path)
            answer = _Answer(500, _http(500, Fault.server_error().render("")))
        finally:
            self._finish(x, answer.status)
        self._send(x.handler, answer)

    def _send(self, handler: _Handler, answer: _Answer) -> None:
        """Write an answer: at once, dripped, or followed by endless keep-alives."""
        if answer.close:
            handler.close_connection = True
        if answer.paced is not None:
            parts, interval = answer.paced
            for index, part in enumerate(parts):
                if index and self._stopping.wait(interval):
                    handler.close_connection = True
                    return
                handler.wfile.write(part)
        elif answer.drip is None:
            if answer.pause and self._stopping.wait(answer.pause):
                handler.close_connection = True
                return
            handler.wfile.write(answer.data)
        else:
            size, interval = answer.drip
            for start in range(0, len(answer.data), size):
                if start and self._stopping.wait(interval):
                    handler.close_connection = True
                    return
                handler.wfile.write(answer.data[start : start + size])
        if answer.repeat is not None:
            handler.close_connection = True
            chunk, interval = answer.repeat
            while not self._stopping.wait(interval):
                handler.wfile.write(chunk)

    def _finish(self, x: _Exchange, status: int) -> None:
        record = RecordedRequest(
            x.method, x.path, x.headers, x.body, x.model, status, x.started, time.monotonic()
        )
        with self._lock:
            if x.generation != self._generation:
                return  # admitted before a reset: not this log's, nor these counters'
            if x.slot is not None:
                self._in_flight[x.slot] -= 1
                self._model_in_flight[x.slot[1]] -= 1
            self._requests.append(record)

    def _auth(self, headers: Mapping[str, str]) -> tuple[int, bytes] | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return 401, _AUTH_MISSING
        project = headers.get("openai-project")
        if auth[7:].strip() != self.api_key or (
            project is not None
            and (
                not _PROJECT.fullmatch(project)
                or (self.projects is not None and project not in self.projects)
            )
        ):
            return 401, _AUTH_FAILED
        return None

    def _chat(self, x: _Exchange) -> _Answer:
        refused = self._auth(x.headers)
        if refused:
            return _Answer(refused[0], _http(*refused))
        try:
            x.body = json.loads(x.raw)
            # The structure first, as FastAPI validates a body before its handler runs;
            # images are checked once the model (and whether it has vision) is known.
            body = validate(x.body, vision=True)
        except ValueError as error:  # not JSON, or a pydantic ValidationError
            return _Answer(422, _http(422, unprocessable(error)))
        model: str = body["model"]
        x.model = model
        fault = self._admit(x, (x.headers.get("openai-project", ""), model))
        if x.slot is None:
            return _Answer(429, _http(429, _CONCURRENCY.render(model)))
        wait = self.latency + (fault.latency if fault else 0.0)
        if wait > 0:
            self._stopping.wait(wait)
        stream = bool(body.get("stream"))
        if fault is not None:
            fixed = _fixed(fault, model, stream)
            if fixed is not None:
                return fixed
        profile = self._profiles.get(model)
        if profile is None and self._serve_lora and _LORA.fullmatch(model):
            profile = _Profile()
        if profile is None:
            missing = {"error": {"code": 404, "message": f"The model `{model}` does not exist"}}
            return _Answer(404, _http(404, json.dumps(missing).encode()))
        if not profile.vision:
            try:
                validate(x.body, vision=False)
            except ValidationError as error:
                return _Answer(422, _http(422, unprocessable(error)))
        reasoning = _reasons(profile.reasoning, body)
        try:
            completion = self.backend.complete(ChatRequest(model, body, reasoning))
        except Exception as failure:  # a backend's refusal, presented as W&B's gateway would
            return _backend_failure(failure)
        usage = self._usage(body, completion, profile, x.slot)
        kind = fault.kind if fault is not None else None
        if stream and kind not in ("invalid_json", "no_choices", "null_message"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._events(model, completion, usage, include_usage)
            return _streamed(events, fault, model)
        return _whole(self._message(model, completion, usage), fault)

    def _admit(self, x: _Exchange, key: tuple[str, str]) -> Fault | None:
        """Take a concurrency slot (``x.slot`` stays None if refused) and this request's fault."""
        with self._lock:
            in_flight = self._in_flight.get(key, 0)
            if self.concurrency_limit is not None and in_flight >= self.concurrency_limit:
                return None
            self._in_flight[key] = in_flight + 1
            model = key[1]
            now = self._model_in_flight.get(model, 0) + 1
            self._model_in_flight[model] = now
            if now > self._max_in_flight.get(model, 0):
                self._max_in_flight[model] = now
            x.slot, x.generation = key, self._generation
            queue = self._scripts.get(model)
            return queue.popleft() if queue else self._always.get(model)

    def _usage(
        self,
        body: Mapping[str, Any],
        completion: Completion,
        profile: _Profile,
        key: tuple[str, str],
    ) -> dict[str, Any]:
        blocks = [json.dumps(body.get("tools") or [], sort_keys=True), *body["messages"]]
        sizes = [count_tokens(blocks[0]), *(_message_tokens(m) for m in body["messages"])]
        prompt = completion.prompt_tokens
        if prompt is None:
            prompt = sum(sizes) + 3
        output = completion.completion_tokens
        if output is None:
            output = count_tokens((completion.reasoning or "") + " " + (completion.content or ""))
            output += sum(count_tokens(c.name + " " + c.arguments) for c in completion.tool_calls)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        }
        if profile.prefix_cache:
            cached = 0 if "cache_salt" in body else self._cached(key, blocks, sizes)
            usage["prompt_tokens_details"] = {"cached_tokens": min(cached, max(prompt - 1, 0))}
        return usage

    def _cached(self, key: tuple[str, str], blocks: list[Any], sizes: list[int]) -> int:
        digest = hashlib.blake2b(digest_size=16)
        prefixes = []
        for block in blocks:
            digest.update(json.dumps(block, sort_keys=True).encode())
            prefixes.append(digest.copy().digest())
        cached = running = 0
        with self._lock:
            seen = self._prefixes.setdefault(key, set())
            for prefix, size in zip(prefixes, sizes, strict=True):
                running += size
                if prefix in seen:
                    cached = running
            if len(seen) > _PREFIX_MEMORY:
                seen.clear()
            seen.update(prefixes)
        return cached

    def _message(self, model: str, c: Completion, usage: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.content,
            self._reasoning_key: c.reasoning,
        }
        if c.tool_calls:
            message["tool_calls"] = [
                {
                    "id": t.id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": t.arguments},
                }
                for t in c.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": c.finish_reason,
        }
        return {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage,
        }

    def _events(
        self, model: str, c: Completion, usage: dict[str, Any], include_usage: bool
    ) -> _Events:
        """The SSE payloads of a streamed answer, in order, ending with ``[DONE]``."""
        head = json.dumps(
            {
                "id": _completion_id(),
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
            }
        )[:-1]

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            delta_json = json.dumps(delta, ensure_ascii=False)
            return (
                f'{head}, "choices": [{{"index": 0, "delta": {delta_json},'
                f' "logprobs": null, "finish_reason": {json.dumps(finish)}}}]}}'
            )

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({self._reasoning_key: p}) for p in _PIECE.findall(c.reasoning or "")]
        events += [chunk({"content": p}) for p in _PIECE.findall(c.content or "")]
        for index, call in enumerate(c.tool_calls):
            function = {"name": call.name, "arguments": ""}
            first = {"index": index, "id": call.id, "type": "function", "function": function}
            events.append(chunk({"tool_calls": [first]}))
            events += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                for p in _PIECE.findall(call.arguments)
            ]
        answer = len(events)
        events.append(chunk({}, c.finish_reason))
        if include_usage:
            events.append(f'{head}, "choices": [], "usage": {json.dumps(usage)}}}')
        events.append("[DONE]")
        return _Events(events, answer)


@dataclass(frozen=True)
class _Answer:
    """What to write for one request, and how."""

    status: int
    """As logged in ``Emulator.requests`` (0: nothing was answered)."""
    data: bytes = b""
    close: bool = False
    """Close the connection once ``data`` is written (a cut answer, a hang)."""
    drip: tuple[int, float] | None = None
    """Write ``data`` this many bytes at a time, this many seconds apart."""
    repeat: tuple[bytes, float] | None = None
    """After ``data``, write these bytes every so many seconds until the emulator stops."""
    pause: float = 0.0
    """Wait this long before writing ``data`` (a slow non-streamed answer)."""
    paced: tuple[tuple[bytes, ...], float] | None = None
    """Instead of ``data``: write these parts this many seconds apart (a slow stream)."""


@dataclass(frozen=True)
class _Events:
    """A stream's SSE payloads; the first ``answer`` of them precede the finish chunk."""

    payloads: list[str]
    answer: int

    def first(self, count: int) -> list[str]:
        """Up to ``count`` events, never the finish chunk, usage or ``[DONE]``."""
        return self.payloads[: min(count, self.answer)]


_CONCURRENCY = Fault("error", 429, concurrency_body())
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
)


_END = b"0\r\n\r\n"
"""The chunked body's terminator: a stream that ends properly ends with it."""


def _fixed(fault: Fault, model: str, stream: bool) -> _Answer | None:
    """The answer of a fault that needs no completion, or ``None``."""
    if fault.kind == "hang":
        return _Answer(0, close=True)
    if fault.kind == "error" or (fault.kind == "stream_error" and not stream):
        extra = {"Content-Type": fault.content_type}
        if fault.retry_after is not None:
            extra["Retry-After"] = f"{fault.retry_after:g}"
        return _Answer(fault.status, _http(fault.status, fault.render(model), extra))
    if fault.kind == "sse":
        return _Answer(200, _SSE_HEAD + (_chunk(fault.render(model)) if fault.body else b"") + _END)
    if fault.kind == "keepalive":
        return _Answer(
            200, _SSE_HEAD, repeat=(_chunk(f"{fault.body}\n\n".encode()), fault.interval)
        )
    return None


def _streamed(events: _Events, fault: Fault | None, model: str) -> _Answer:
    """A streamed answer as ``fault`` (one of the kinds that alter an answer) sends it."""
    kind = fault.kind if fault is not None else None
    if fault is not None and kind == "stream_cut":
        cut = _SSE_HEAD + b"".join(_sse(e) for e in events.first(fault.after_chunks))
        return _Answer(200, cut + _END) if fault.clean else _Answer(200, cut, close=True)
    if fault is not None and kind == "stream_error":
        first = b"".join(_sse(e) for e in events.first(fault.after_chunks))
        return _Answer(200, _SSE_HEAD + first + _sse(fault.render(model).decode()) + _END)
    if kind == "sse_framing":
        return _Answer(200, _SSE_HEAD + _unusual_framing(events.payloads) + _END)
    if fault is not None and kind == "slow_generation":
        parts = (_SSE_HEAD, *(_sse(e) for e in events.payloads), _END)
        return _Answer(200, paced=(parts, fault.interval / max(1, len(events.payloads))))
    data = _SSE_HEAD + b"".join(_sse(e) for e in events.payloads) + _END
    return _drip(data, fault)


def _whole(message: dict[str, Any], fault: Fault | None) -> _Answer:
    """A non-streamed answer as ``fault`` (one of the kinds that alter an answer) sends it."""
    kind = fault.kind if fault is not None else None
    if kind == "no_choices":
        message = {**message, "choices": []}
    elif kind == "null_message":
        message = {**message, "choices": [{**message["choices"][0], "message": None}]}
    body = json.dumps(message, ensure_ascii=False).encode()
    half = body[: len(body) // 2]
    if kind == "invalid_json" or (fault is not None and kind == "stream_cut" and fault.clean):
        return _Answer(200, _http(200, half))
    if kind == "stream_cut":  # the head promises the whole body; half of it comes
        whole = _http(200, body)
        return _Answer(200, whole[: len(whole) - len(body) + len(half)], close=True)
    if fault is not None and kind == "slow_generation":
        return _Answer(200, _http(200, body), pause=fault.interval)
    return _drip(_http(200, body), fault)


def _drip(data: bytes, fault: Fault | None) -> _Answer:
    if fault is not None and fault.kind == "drip":
        return _Answer(200, data, drip=(fault.size, fault.interval))
    return _Answer(200, data)


def _unusual_framing(payloads: list[str]) -> bytes:
    """The events with valid but unusual SSE lines (``Fault.sse_framing``)."""
    blocks = ["retry: 3000\n\n", ": keepalive\n\n"]
    for number, payload in enumerate(payloads, 1):
        empty = "" if payload == "[DONE]" else "data:\n"
        blocks.append(f"id: {number}\nevent: message\ndata: {payload}\n{empty}\n")
    return b"".join(_chunk(block.encode()) for block in blocks)


def _backend_failure(failure: Exception) -> _Answer:
    """A backend's failure in W&B's error shape, with the backend's own words.

    A ``BackendError`` keeps its status, message and type verbatim; anything else is
    W&B's 500 (the failure is logged: it is a bug in the backend, not an answer).
    """
    if not isinstance(failure, BackendError):
        logger.exception("emulator backend failed", exc_info=failure)
        return _Answer(500, _http(500, Fault.server_error().render("")))
    error: dict[str, Any] = {
        "code": failure.status,
        "message": failure.body.get("message", str(failure)),
    }
    if "type" in failure.body:
        error["type"] = failure.body["type"]
    return _Answer(failure.status, _http(failure.status, json.dumps({"error": error}).encode()))


def _sse(event: str) -> bytes:
    """One SSE ``data:`` event in its own HTTP chunk."""
    return _chunk(f"data: {event}\n\n".encode())


def _chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _http(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """Build a complete response (JSON unless ``headers`` say otherwise), for one write."""
    fields = {"Content-Type": "application/json", **(headers or {})}
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _completion_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


def _profiles(models: Iterable[str] | None) -> dict[str, _Profile]:
    """Map served IDs to catalog facts, once, so requests do no catalog scans."""
    from langchain_wandb_inference.models import all_models

    catalog = {info.id: info for info in all_models()}
    ids = [i for i, info in catalog.items() if info.lifecycle.value != "retired"]
    profiles = {}
    for model_id in ids if models is None else models:
        info = catalog.get(model_id)
        profiles[model_id] = (
            _Profile()
            if info is None
            else _Profile(
                info.reasoning.value,
                info.vision,
                info.price is not None and info.price.cached_input is not None,
            )
        )
    return profiles


def _reasons(mode: str, body: Mapping[str, Any]) -> bool:
    """Whether a model in reasoning ``mode`` reasons for this request."""
    if mode in ("none", "always"):
        return mode == "always"
    flag = (body.get("chat_template_kwargs") or {}).get("enable_thinking")
    return flag is True if mode == "default-off" else flag is not False


def _message_tokens(message: Mapping[str, Any]) -> int:
    """Prompt tokens of one message: 4 for framing, its text, images, and tool calls."""
    tokens = 4 + count_tokens(message_text(message))
    content = message.get("content")
    if isinstance(content, list):
        tokens += _IMAGE_TOKENS * sum(1 for p in content if p.get("type") == "image_url")
    for call in message.get("tool_calls") or ():
        function = call["function"]
        tokens += count_tokens(function["name"] + " " + function["arguments"])
    return tokens


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client drops its connection; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Turns each HTTP request into an ``_Exchange`` for the emulator (keep-alive)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # SSE and small answers must not wait for ACKs
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.emulator._lock:
            self.server.emulator._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.emulator._lock:
            self.server.emulator._connections.discard(self.connection)
        super().finish()

    def _dispatch(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?", 1)[0]
        exchange = _Exchange(self, self.command, path, headers, raw, started)
        try:
            self.server.emulator._handle(exchange)
        except OSError:  # the client went away mid-answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log: tests and benchmarks make thousands."""
