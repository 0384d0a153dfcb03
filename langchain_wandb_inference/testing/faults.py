"""Faults the emulator can inject, each with the status, body and message W&B documents.

Tests script faults to exercise a client's error handling without the real service:
the bodies are byte-for-byte the documented ones (``wb-inference-api.md`` section 5),
so a classifier that reads status *and* message (429 quota vs 429 concurrency) is
tested against what it will meet in production.

A ``Fault`` is immutable; tweak one with keyword arguments to its constructor
(``Fault.overloaded(retry_after=2)``) or ``dataclasses.replace``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

MODEL_PLACEHOLDER = "<model>"
"""Replaced in a fault's body by the requested model ID when the fault is served."""

FaultKind = Literal["error", "hang", "stream_cut", "delay"]


def _error_body(code: int | str, message: str, **extra: str) -> str:
    return json.dumps({"error": {"code": code, "message": message, **extra}})


@dataclass(frozen=True)
class Fault:
    """One injected failure (or slow success) for a single request.

    ``kind`` decides what the emulator does:

    - ``"error"``: wait ``latency`` seconds, then answer ``status`` with ``body``.
    - ``"hang"``: accept the request, send nothing for ``latency`` seconds, then close.
    - ``"stream_cut"``: start a normal answer and close the connection after
      ``after_chunks`` SSE events (non-streamed: after part of the body).
    - ``"delay"``: the normal answer, after ``latency`` seconds.
    """

    kind: FaultKind
    status: int = 200
    body: str = ""
    """Exact JSON text sent; ``MODEL_PLACEHOLDER`` becomes the requested model ID."""
    retry_after: float | None = None
    """Adds a ``Retry-After`` header (seconds) to an error answer."""
    latency: float = 0.0
    after_chunks: int = 0

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
    def stream_cut(cls, after_chunks: int, *, latency: float = 0.0) -> Fault:
        """Close the connection mid-answer, after ``after_chunks`` SSE events."""
        return cls("stream_cut", 200, latency=latency, after_chunks=after_chunks)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, after ``seconds``."""
        return cls("delay", 200, latency=seconds)


QUOTA_MESSAGE = "You exceeded your current quota, please check your plan and billing details"


def concurrency_body() -> str:
    """Return the live 429 concurrency body; the model ID is filled in when served."""
    message = f"Concurrency limit reached for requests: {MODEL_PLACEHOLDER}-project limit reached"
    return _error_body("rate_limit_exceeded", message)
