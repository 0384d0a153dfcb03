"""Faults the emulator can inject, each with bytes taken from the contract or a real engine.

Tests script faults to exercise a client's error handling without the real service.
Nothing here is made up: W&B's error bodies are the documented ones
(``wb-inference-api.md`` §5), so a classifier that reads status *and* message (429
quota vs 429 concurrency) is tested against what it will meet in production; what
engines and proxies send in the wild (§10) is taken from their source or from the
verbatim llama.cpp captures in ``tests/data/engines/llamacpp/`` — each classmethod's
docstring says where its bytes come from.

Three families:

- fixed answers: W&B's errors, engines' own errors (context overflow, llama.cpp's
  tool-format 500), a proxy's HTML page, a fixed SSE body (empty, only ``[DONE]``);
- a normal answer, altered on the way out: cut short (with or without the chunked
  terminator), an error event after the first chunk, dripped a few bytes at a time,
  unusual but valid SSE framing, invalid JSON, ``choices: []``, ``message: null``;
- timing: latency, a hang, an endless keep-alive stream.

A ``Fault`` is immutable; tweak one with keyword arguments to its constructor
(``Fault.overloaded(retry_after=2)``) or ``dataclasses.replace``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

MODEL_PLACEHOLDER = "<model>"
"""Replaced in a fault's body by the requested model ID when the fault is served."""

FaultKind = Literal[
    "error",
    "sse",
    "hang",
    "delay",
    "stream_cut",
    "stream_error",
    "drip",
    "slow_generation",
    "keepalive",
    "sse_framing",
    "invalid_json",
    "no_choices",
    "null_message",
]
Engine = Literal["vllm", "sglang", "llamacpp", "tgi"]


def _error_body(code: int | str, message: str, **extra: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, **extra}})


def _compact(value: Any) -> str:
    """JSON as engines write it: no spaces (Starlette, orjson, nlohmann, serde)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Fault:
    """One injected failure (or slow or odd success) for a single request.

    ``kind`` decides what the emulator does (every kind waits ``latency`` seconds
    first); the classmethods build each one and say what it sends:

    - ``"error"``: answer ``status`` with ``body`` (``content_type``), whatever was asked.
    - ``"sse"``: a 200 event stream whose whole content is ``body``, then the chunked
      terminator, whatever was asked.
    - ``"hang"``: accept the request, send nothing for ``latency`` seconds, then close.
    - ``"delay"``: the normal answer, after ``latency`` seconds.
    - ``"stream_cut"``: the normal answer's first ``after_chunks`` SSE events (never its
      finish chunk, usage or ``[DONE]``); then the chunked terminator if ``clean``, else
      the connection closes.  Non-streamed: the first half of the body, with a
      ``Content-Length`` for that half if ``clean``, else for the whole.
    - ``"stream_error"``: the first ``after_chunks`` events, then ``data: <body>`` and
      the terminator.  Non-streamed: ``status`` with ``body`` (its HTTP twin).
    - ``"drip"``: the normal answer, ``size`` bytes per write, ``interval`` s apart.
    - ``"keepalive"``: the SSE head, then the comment ``body`` every ``interval``
      seconds until the emulator stops (or the client goes).
    - ``"sse_framing"``: the normal stream with valid but unusual SSE framing.
    - ``"invalid_json"``, ``"no_choices"``, ``"null_message"``: the normal JSON answer
      (even for a streamed request), altered as named.
    """

    kind: FaultKind
    status: int = 200
    body: str = ""
    """Exact text sent; ``MODEL_PLACEHOLDER`` becomes the requested model ID."""
    retry_after: float | None = None
    """Adds a ``Retry-After`` header (seconds) to an error answer."""
    latency: float = 0.0
    after_chunks: int = 0
    clean: bool = False
    """``stream_cut``: end the chunked body properly instead of dropping the connection."""
    content_type: str = "application/json"
    """``error``: the ``Content-Type`` of ``body``."""
    size: int = 0
    """``drip``: bytes per write."""
    interval: float = 0.0
    """``drip`` and ``keepalive``: seconds between writes."""

    def json(self) -> Any:
        """Return the body as parsed JSON (for assertions in tests)."""
        return json.loads(self.body)

    def render(self, model: str) -> bytes:
        """Return the body to put on the wire for a request for ``model``."""
        return self.body.replace(MODEL_PLACEHOLDER, json.dumps(model)[1:-1]).encode()

    @classmethod
    def _error(cls, status: int, body: str, retry_after: float | None, latency: float) -> Fault:
        return cls("error", status, body, retry_after, latency)

    @classmethod
    def authentication(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """401: bad, expired or revoked key, or wrong entity/project (2026 wording)."""
        return cls._error(401, _error_body(401, "Authentication failed"), retry_after, latency)

    @classmethod
    def quota(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """402: credits used up or spend cap reached (since Oct 2025)."""
        return cls._error(402, _error_body(402, QUOTA_MESSAGE), retry_after, latency)

    @classmethod
    def quota_429(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """429 with the quota message: the 2025 form of 402, must not be retried."""
        return cls._error(429, _error_body(429, QUOTA_MESSAGE), retry_after, latency)

    @classmethod
    def personal_account(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """429 refusing a personal (non-team) entity, as in 2025."""
        body = _error_body(429, "W&B Inference isn't available for personal accounts.")
        return cls._error(429, body, retry_after, latency)

    @classmethod
    def region(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """403: request from an unsupported location."""
        body = _error_body(403, "Country, region, or territory not supported")
        return cls._error(403, body, retry_after, latency)

    @classmethod
    def gateway_disabled(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """403: the organization has not enabled Inference."""
        body = _error_body(403, "The inference gateway is not enabled for your organization")
        return cls._error(403, body, retry_after, latency)

    @classmethod
    def not_found(
        cls, *, model: bool = False, retry_after: float | None = None, latency: float = 0.0
    ) -> Fault:
        """404: ``model=True`` gives the "model does not exist" wording (retired/unknown)."""
        message = (
            f"The model `{MODEL_PLACEHOLDER}` does not exist"
            if model
            else "The requested resource was not found"
        )
        return cls._error(404, _error_body(404, message), retry_after, latency)

    @classmethod
    def invalid(
        cls,
        param: str,
        msg: str,
        *,
        error_type: str = "value_error",
        retry_after: float | None = None,
        latency: float = 0.0,
    ) -> Fault:
        """422 in FastAPI's shape: ``detail`` names the offending body parameter."""
        body = json.dumps({"detail": [{"loc": ["body", param], "msg": msg, "type": error_type}]})
        return cls._error(422, body, retry_after, latency)

    @classmethod
    def concurrency(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """429 concurrency limit, the retryable 429 (as seen live)."""
        return cls._error(429, concurrency_body(), retry_after, latency)

    @classmethod
    def server_error(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """500: internal error, retryable."""
        body = _error_body(500, "The server had an error while processing your request")
        return cls._error(500, body, retry_after, latency)

    @classmethod
    def overloaded(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """503: high traffic, retryable; a fallback model may serve."""
        body = _error_body(503, "The engine is currently overloaded, please try again later")
        return cls._error(503, body, retry_after, latency)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Accept the request, answer nothing for ``seconds``, then close: exercises timeouts."""
        return cls("hang", 0, latency=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, after ``seconds``."""
        return cls("delay", 200, latency=seconds)

    # --- engines and proxies (contract section 10) -------------------------------------

    @classmethod
    def tool_format_error(cls, *, retry_after: float | None = None, latency: float = 0.0) -> Fault:
        """500 from llama.cpp when the model's own output does not parse as a tool call.

        Bytes: llama.cpp's body verbatim (capture ``tool_format_error``); the contract
        (§10) notes it repeats for the same prompt at temperature 0.
        """
        return cls._error(500, LLAMACPP_TOOL_FORMAT_ERROR, retry_after, latency)

    @classmethod
    def stream_error(
        cls, error: Fault | None = None, *, after_chunks: int = 1, latency: float = 0.0
    ) -> Fault:
        r"""A 200 stream that turns into an error: ``data: {"error": ...}`` after the first chunk.

        Bytes: llama.cpp's capture ``tool_format_error_stream`` (the role-only chunk,
        then the error event as its own HTTP chunk, then a clean ``0\r\n\r\n``, no
        ``[DONE]``).  ``error`` is the fault whose body becomes the event: by default
        llama.cpp's own (``tool_format_error``); any W&B error (``Fault.overloaded()``,
        ``Fault.concurrency()``, ...) gives the same shape with W&B's body, as vLLM and
        gateways send it (§10).  A non-streamed request gets ``error`` itself.
        """
        error = error if error is not None else cls.tool_format_error()
        if error.kind != "error":
            raise ValueError(f"stream_error takes an error fault, not {error.kind!r}")
        return cls("stream_error", error.status, error.body, None, latency, after_chunks)

    @classmethod
    def stream_cut(cls, after_chunks: int, *, clean: bool = False, latency: float = 0.0) -> Fault:
        r"""A stream that stops after ``after_chunks`` events: no finish_reason, no ``[DONE]``.

        Bytes: as the llama.cpp captures ``killed_sigkill_stream`` and
        ``killed_sigkill_before_first_token_stream`` (``after_chunks=0``: a 200 head,
        then nothing) show a killed server: the data ends at an event's HTTP-chunk
        boundary, no ``0\r\n\r\n``, then the connection closes (FIN).  ``clean=True``
        sends the terminator instead: the early end the contract (§10) says neither
        the SDK nor ChatOpenAI flags.
        """
        return cls("stream_cut", 200, latency=latency, after_chunks=after_chunks, clean=clean)

    @classmethod
    def drip(cls, *, size: int = 8, interval: float = 0.1) -> Fault:
        """The normal 200 answer (JSON or SSE), ``size`` bytes per write, ``interval`` s apart.

        Bytes: the emulator's normal answer, unchanged; only its pace is the fault.
        Bytes keep arriving, so a per-read timeout never fires while the whole answer
        outlives any overall timeout shorter than about ``len / size * interval``.
        """
        if size < 1 or interval < 0:
            raise ValueError("drip needs size >= 1 and interval >= 0")
        return cls("drip", 200, size=size, interval=interval)

    @classmethod
    def slow_generation(cls, seconds: float) -> Fault:
        """A model that takes ``seconds`` to generate its answer, as real engines pace it.

        Non-streamed, nothing comes until the whole answer does, ``seconds`` later (so a
        shorter timeout expires); streamed, the events go out one by one spread over
        ``seconds``, as tokens are generated (llama.cpp's ``chat_basic_stream`` capture:
        one event per token).  The bytes are the normal answer's.
        """
        if seconds < 0:
            raise ValueError("slow_generation needs seconds >= 0")
        return cls("slow_generation", 200, interval=seconds)

    @classmethod
    def keepalive(
        cls, *, comment: Literal[":", ": keepalive"] = ":", interval: float = 1.0
    ) -> Fault:
        r"""A 200 event stream that only ever sends SSE comments, until the emulator stops.

        Bytes: ``":"`` is llama.cpp's ping (capture ``sse_ping_stream``: each one its
        own HTTP chunk ``3\r\n:\n\n\r\n``); ``": keepalive"`` is the comment the
        contract (§10) names.  The first comes ``interval`` s after the head.
        """
        if interval <= 0:
            raise ValueError("keepalive needs interval > 0")
        return cls("keepalive", 200, comment, interval=interval)

    @classmethod
    def sse_framing(cls) -> Fault:
        """The normal stream, framed with valid but unusual SSE lines.

        Bytes: the normal answer's events, framed with what the WHATWG SSE
        specification allows and the contract (§10) lists as valid: a lone
        ``retry: 3000`` block, a ``: keepalive`` comment, an ``id:`` and an explicit
        ``event: message`` (the default type) on every event, and an empty ``data:``
        line after each JSON line (a spec-compliant parser then yields the JSON with a
        trailing newline; ``[DONE]`` is left alone).  A spec-compliant parser yields the
        normal answer.
        """
        return cls("sse_framing", 200)

    @classmethod
    def invalid_json(cls) -> Fault:
        """A 200 ``application/json`` body that is not JSON: the normal answer's first half.

        Bytes: the emulator's normal answer, cut in half, framed as complete
        (``Content-Length`` of the half), as a proxy or worker that dies mid-body and
        still ends the message leaves it.  Sent for streamed requests too.
        """
        return cls("invalid_json", 200)

    @classmethod
    def no_choices(cls) -> Fault:
        """A 200 answer with ``choices: []`` (the normal answer otherwise).

        Bytes: the normal answer; the contract (§10) shows engines send an empty
        ``choices`` in usage chunks, and real W&B batch runs log "HTTP 200 response
        contained no assistant content".  Sent for streamed requests too.
        """
        return cls("no_choices", 200)

    @classmethod
    def null_message(cls) -> Fault:
        """A 200 answer whose ``choices[0].message`` is ``null`` (the normal answer otherwise).

        Bytes: the normal answer with the message nulled, the non-streamed form of
        "HTTP 200 response contained no assistant content" (§10).  Sent for streamed
        requests too.
        """
        return cls("null_message", 200)

    @classmethod
    def empty_stream(cls) -> Fault:
        r"""A 200 event stream with no event at all: the head, then ``0\r\n\r\n``.

        Bytes: the chunked framing of the llama.cpp captures with no event in it
        (§10: truncation, "cleanly or not"; ``stream_cut(0)`` is the unclean twin).
        Sent for non-streamed requests too.
        """
        return cls("sse", 200)

    @classmethod
    def only_done(cls) -> Fault:
        r"""A 200 event stream holding only ``data: [DONE]``.

        Bytes: the last two HTTP chunks of llama.cpp's capture ``chat_basic_stream``
        (``e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n``).  Sent for non-streamed requests too.
        """
        return cls("sse", 200, "data: [DONE]\n\n")

    @classmethod
    def proxy_html(cls, status: Literal[200, 502, 503, 504] = 502) -> Fault:
        """An nginx HTML page instead of JSON, as a proxy in front of the service sends it.

        Bytes: nginx's built-in error page for 502/503/504 (``ngx_http_special_response.c``,
        with ``server_tokens off``), which the contract (§10) says proxies answer with.
        ``status=200``: nginx's stock ``html/50x.html`` as served by
        ``error_page 500 502 503 504 =200 /50x.html`` (the ``=200`` rewrites the status):
        an HTML page with a 200.
        """
        return cls("error", status, NGINX_PAGES[status], content_type="text/html")

    @classmethod
    def context_overflow(
        cls,
        engine: Engine,
        *,
        prompt_tokens: int = 630,
        context: int = 512,
        max_tokens: int = 100,
    ) -> Fault:
        """An engine's own "the prompt does not fit" error, in its own body.

        Bytes (defaults: the llama.cpp capture's 630 tokens over a 512 context):

        - ``"llamacpp"``: 400, llama.cpp's body verbatim with ``type``,
          ``n_prompt_tokens`` and ``n_ctx`` (capture ``ctx_overflow``; a streamed
          request gets the same plain 400, as ``ctx_overflow_stream`` shows).
        - ``"vllm"``: 400, vLLM's ``ErrorResponse`` with the wording the contract
          quotes ("This model's maximum context length is N tokens. However, you
          requested M tokens (P in the messages, C in the completion). ...", from
          ``serving_engine.py``).
        - ``"sglang"``: 400, SGLang's ``ErrorResponse`` (vLLM's shape) with "The input
          (N tokens) is longer than the model's context length (M tokens)."
        - ``"tgi"``: **422** (TGI's status for validation errors; the contract's "all
          400" does not hold for TGI), ``{"error": "Input validation error: `inputs`
          tokens + `max_new_tokens` must be <= M. Given: ...", "error_type":
          "validation"}`` (``router/src/validation.rs``, ``infer/mod.rs``).
        """
        if engine == "llamacpp":
            message = (
                f"request ({prompt_tokens} tokens) exceeds the available context size "
                f"({context} tokens), try increasing it"
            )
            error = {
                "code": 400,
                "message": message,
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt_tokens,
                "n_ctx": context,
            }
            return cls("error", 400, _compact({"error": error}))
        if engine == "tgi":
            message = (
                f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                f"{context}. Given: {prompt_tokens} `inputs` tokens and {max_tokens} "
                "`max_new_tokens`"
            )
            return cls("error", 422, _compact({"error": message, "error_type": "validation"}))
        if engine == "vllm":
            message = (
                f"This model's maximum context length is {context} tokens. However, you "
                f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the "
                f"messages, {max_tokens} in the completion). Please reduce the length of "
                "the messages or completion."
            )
        else:
            message = (
                f"The input ({prompt_tokens} tokens) is longer than the model's context "
                f"length ({context} tokens)."
            )
        body = {
            "object": "error",
            "message": message,
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
        return cls("error", 400, _compact(body))


QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details"


def concurrency_body() -> str:
    """Return the live 429 concurrency body; the model ID is filled in when served."""
    message = f"Concurrency limit reached for requests: {MODEL_PLACEHOLDER}-project limit reached"
    return _error_body("rate_limit_exceeded", message)


LLAMACPP_TOOL_FORMAT_ERROR = _compact(
    {
        "error": {
            "code": 500,
            "message": "The model produced output that does not match the expected "
            "peg-native format",
            "type": "server_error",
        }
    }
)
"""llama.cpp's 500 body (and in-stream error event) for unparsable tool-call output."""

_NGINX_TAIL = "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"


def _nginx_page(title: str) -> str:
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n{_NGINX_TAIL}"
    )


NGINX_PAGES: dict[int, str] = {
    502: _nginx_page("502 Bad Gateway"),
    503: _nginx_page("503 Service Temporarily Unavailable"),
    504: _nginx_page("504 Gateway Time-out"),
    200: "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            "<title>Error</title>",
            "<style>",
            "html { color-scheme: light dark; }",
            "body { width: 35em; margin: 0 auto;",
            "font-family: Tahoma, Verdana, Arial, sans-serif; }",
            "</style>",
            "</head>",
            "<body>",
            "<h1>An error occurred.</h1>",
            "<p>Sorry, the page you are looking for is currently unavailable.<br/>",
            "Please try again later.</p>",
            "<p>If you are the system administrator of this resource then you should check",
            "the error log for details.</p>",
            "<p><em>Faithfully yours, nginx.</em></p>",
            "</body>",
            "</html>",
            "",
        ]
    ),
}
"""nginx's pages: built-in error pages (server_tokens off) and, for 200, its html/50x.html."""
