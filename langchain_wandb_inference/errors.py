"""Typed errors for W&B Inference, what the package decides about each, and ``classify``.

W&B Inference reuses HTTP statuses for different conditions -- a 429 is a concurrency
limit, but also the pre-October-2025 form of "out of credits" and the 2025 refusal of
personal accounts -- so :func:`classify` reads the status *and* the message, never the
status alone.  Hierarchy, with what each class stands for and the ``openai`` exception it
also is (so existing ``except openai.RateLimitError`` clauses keep working)::

    WBInferenceError                    base of all; a LangChain ModelError
    ├── WBAuthenticationError           401                openai.AuthenticationError
    ├── WBQuotaExceededError            402, 429 quota     openai.APIStatusError only
    ├── WBPermissionDeniedError         403, 429 personal  openai.PermissionDeniedError
    ├── WBModelNotFoundError            404                openai.NotFoundError
    ├── WBInvalidRequestError           400, 413           openai.BadRequestError
    │   ├── WBUnprocessableEntityError  422                + openai.UnprocessableEntityError
    │   └── WBContextOverflowError      input too long     + LangChain ContextOverflowError
    ├── WBConcurrencyLimitError         429 concurrency    openai.RateLimitError
    ├── WBServerError                   500, other 5xx     openai.InternalServerError
    ├── WBOverloadedError               503                openai.InternalServerError
    ├── WBTimeoutError                  no answer in time  openai.APITimeoutError
    │   └── WBDeadlineExceededError     the call's own deadline ran out (client side)
    ├── WBConnectionError               no answer at all   openai.APIConnectionError
    │   └── WBStreamInterruptedError    a 200 stream ended before its answer did
    ├── WBMalformedResponseError        a 200 that is no answer  openai.APIResponseValidationError
    ├── WBCircuitOpenError              circuit breaker open; no request was sent
    └── WBBudgetExceededError           budget guard; no request was sent

Each is also the matching ``langchain_core.exceptions`` class (ModelAuthenticationError,
ModelRateLimitError, ModelAPIError, ...); quota, circuit and budget errors are plain
``ModelError`` instances.  Two deliberate choices: a quota error is **not** a rate limit
(generic retry code retries every rate limit, and an exhausted quota cannot be retried
into success), and one class, ``WBInvalidRequestError``, catches every invalid request.

Each class carries, as class attributes, everything the package decides about it; the
retry policy, the fallback policy, the circuit breaker and the CLI read them and keep no
lists of their own:

* ``is_retryable`` (LangChain's flag): may the same request succeed if sent again;
* ``fallback``: hand the request to the next fallback model at once, after the retries,
  or never (another model would fail the same way);
* ``counts_against_circuit``: is it evidence that the model is unhealthy;
* ``exit_code``: the ``wb-inference`` exit status;
* ``title`` and ``advice``: what happened, and what to do about it.

A message is the title, the facts (status, model, request id, URL), the server's own
words verbatim, facts-based hints (a retired model's replacement, the offending
parameter), the advice, and what was retried -- said only when it happened.

No error holds a secret: :func:`classify` first redacts the whole exception chain in
place (see ``_redact``), so the ``request``/``response`` an error keeps, and every
exception in its ``__cause__``/``__context__``, carry neither the API key nor the
team/project.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import enum
import json
import math
import re
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import httpx2
import openai
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from langchain_wandb_inference._redact import redact_exception
from langchain_wandb_inference.models import Lifecycle, model_info, suggest_model_id

__all__ = [
    "Attempt",
    "ExitCode",
    "Fallback",
    "PermissionReason",
    "WBAuthenticationError",
    "WBBudgetExceededError",
    "WBCircuitOpenError",
    "WBConcurrencyLimitError",
    "WBConnectionError",
    "WBContextOverflowError",
    "WBDeadlineExceededError",
    "WBInferenceError",
    "WBInvalidRequestError",
    "WBMalformedResponseError",
    "WBModelNotFoundError",
    "WBOverloadedError",
    "WBPermissionDeniedError",
    "WBQuotaExceededError",
    "WBServerError",
    "WBStreamInterruptedError",
    "WBTimeoutError",
    "WBUnprocessableEntityError",
    "classify",
]

KEYS_URL = "https://wandb.ai/authorize"
DEFAULT_BASE_URL = "https://api.inference.wandb.ai/v1"

PermissionReason = Literal["region", "gateway", "personal_account", "unknown"]
"""Why W&B refused access: an unsupported location, Inference not enabled for the
organization, a personal (non-team) account, or something else."""


class Fallback(enum.Enum):
    """What the fallback policy does with an error when fallback models are configured."""

    AT_ONCE = "at once"
    """The model said it cannot serve (overloaded, retired, circuit open): next model now."""
    AFTER_RETRIES = "after retries"
    """Possibly transient: retry this model first, then hand over."""
    NEVER = "no"
    """The caller's to fix (or no time left): another model would fail the same way."""


class ExitCode(enum.IntEnum):
    """``wb-inference`` exit statuses; an error's ``exit_code`` is one of them."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG = 3
    AUTH = 4
    QUOTA = 5
    REQUEST = 6
    TRANSIENT = 7
    INTERRUPTED = 130


class Attempt(NamedTuple):
    """One model that failed, kept in ``history`` when every fallback model failed."""

    model: str
    error_type: str
    error: str


# --------------------------------------------------------------------------------------
# The classes
# --------------------------------------------------------------------------------------


class WBInferenceError(ModelError):
    """Base class of every error this package raises about a W&B Inference call.

    Facts, set on every instance (``None`` when unknown or not applicable): ``model``,
    ``status_code``, ``request_id`` (quote it to W&B support), ``server_message`` (W&B's
    own words, verbatim), ``retry_after`` (seconds the service asked to wait; for an
    open circuit, the seconds until the next probe), ``url`` (where the request went),
    ``attempts`` (how many were made, when the retry policy ran), ``hints`` (facts-based
    sentences of the message) and ``history`` (one :class:`Attempt` per model tried,
    when every fallback model failed).  ``message`` (also ``str(exc)``, without the
    history) is built from them and the class's ``title`` and ``advice``.
    """

    is_retryable = False
    fallback: ClassVar[Fallback] = Fallback.NEVER
    counts_against_circuit: ClassVar[bool] = False
    exit_code: ClassVar[ExitCode] = ExitCode.UNEXPECTED
    title: ClassVar[str] = "W&B Inference call failed"
    advice: ClassVar[str] = ""

    message: str
    model: str | None = None
    request_id: str | None = None
    server_message: str | None = None
    retry_after: float | None = None
    url: str | None = None
    attempts: int | None = None
    not_retried: str | None = None
    """Why a retryable error was not retried (said in the message), or ``None``."""
    hints: tuple[str, ...] = ()
    history: list[Attempt]

    if not TYPE_CHECKING:
        # The openai parents declare (and narrow) ``status_code``; the errors without a
        # response have none: ``None`` (read it with ``getattr`` on the base class).
        status_code = None

    def __init__(
        self, *, request: Any = None, response: Any = None, body: object = None, **facts: Any
    ) -> None:
        # One constructor for the whole hierarchy: the openai parent (if any) keeps the
        # request, response and body; the facts become attributes; the message is built.
        if isinstance(self, openai.APIStatusError):
            openai.APIStatusError.__init__(self, "", response=response, body=body)
        elif isinstance(self, openai.APIError):
            openai.APIError.__init__(self, "", request, body=body)
            if response is not None:  # a 200 that is no answer keeps its response
                self.response, self.status_code = response, response.status_code
        self.history = []
        self.annotate(**facts)

    def annotate(self, **facts: Any) -> None:
        """Set facts (see the class docstring) and rebuild the message from them.

        Used by the policies, which learn facts after the error was built: how many
        attempts were made, why it was not retried.
        """
        for name, value in facts.items():
            setattr(self, name, value)
        self.message = self._compose()
        self.args = (self.message,)

    def __str__(self) -> str:
        if len(self.history) < 2:
            return self.message
        lines = [self.message, "Models tried, in order:"]
        lines += [f"  - {a.model}: {a.error_type}: {_one_line(a.error, 200)}" for a in self.history]
        return "\n".join(lines)

    def _compose(self) -> str:
        status = getattr(self, "status_code", None)
        where = [
            f"HTTP {status}" if status else None,
            None if status or not self.url else f"at {self.url}",
            f"model {self.model!r}" if self.model else None,
            f"request id {self.request_id!r}" if self.request_id else None,
        ]
        head = self.title
        if facts := ", ".join(w for w in where if w):
            head += f" ({facts})"
        if self.server_message:
            end = "" if self.server_message.endswith((".", "!", "?")) else "."
            head += f': "{self.server_message}"{end}'
        elif status and status >= 400:
            head += ": no error message in the response."
        else:
            head += "."
        return " ".join(p for p in (head, *self.hints, self.advice, self._retries()) if p)

    def _retries(self) -> str:
        """What was retried, only as far as it is known (never "retried" when it was not)."""
        if self.attempts is not None and self.attempts > 1:
            return f"Gave up after {self.attempts} attempts."
        if self.not_retried:
            return f"Not retried: {self.not_retried}."
        return ""


class WBAuthenticationError(WBInferenceError, openai.AuthenticationError, ModelAuthenticationError):
    """401: the key is missing, wrong, expired or revoked, or the team/project is wrong."""

    exit_code = ExitCode.AUTH
    title = "W&B Inference rejected the credentials"
    advice = (
        f"Check WANDB_API_KEY (or api_key=...): it may be wrong, expired or revoked; copy a "
        f"valid key from {KEYS_URL}. A wrong team/project (project=..., or WANDB_ENTITY and "
        "WANDB_PROJECT, sent as the OpenAI-Project header) is answered with 401 too. "
        "Not retried: retrying cannot fix credentials."
    )


class WBQuotaExceededError(WBInferenceError, openai.APIStatusError):
    """402, or the 2025 quota 429: credits used up or the monthly spend cap reached."""

    exit_code = ExitCode.QUOTA
    title = "W&B Inference credits are used up or the monthly spend limit was reached"
    advice = (
        "Buy credits or raise the monthly spend limit on your W&B organization's Billing "
        "page (and set an alert there before the limit). Not retried: retrying cannot "
        "succeed until the quota is raised."
    )


class WBPermissionDeniedError(
    WBInferenceError, openai.PermissionDeniedError, ModelPermissionDeniedError
):
    """403 (region, gateway not enabled), or the 2025 personal-account 429."""

    exit_code = ExitCode.AUTH
    title = "W&B Inference refused the request (permission denied)"
    advice = "Not retried: retrying cannot succeed."
    reason: PermissionReason = "unknown"
    """``"region"``, ``"gateway"``, ``"personal_account"`` or ``"unknown"``."""


class WBModelNotFoundError(WBInferenceError, openai.NotFoundError, ModelNotFoundError):
    """404: unknown or case-mismatched model ID, retired model, or wrong base URL."""

    fallback = Fallback.AT_ONCE
    exit_code = ExitCode.REQUEST
    title = "The model was not found on W&B Inference"
    advice = (
        "Model IDs are case-sensitive; list the available ones with "
        "`ChatWBInference.list_models()` or `wb-inference models`, and check base_url. "
        "Not retried with the same model; fallback_models can serve the request."
    )
    replacement: str | None = None
    """The catalog's successor of a retired or deprecated model."""
    suggestion: str | None = None
    """The correctly spelled catalog ID for a near miss (wrong case, say)."""


class WBInvalidRequestError(WBInferenceError, openai.BadRequestError, ModelInvalidRequestError):
    """400, 413 or 422: the service rejected the request itself."""

    exit_code = ExitCode.REQUEST
    title = "W&B Inference rejected the request as invalid"
    advice = (
        "Check the parameters and messages: one may be unsupported by this model, out of "
        "range, or malformed. Not retried: the same request would fail again."
    )
    detail: object = None
    """The body's ``detail``: a string, or FastAPI's list of ``{"loc", "msg", "type"}``."""


class WBUnprocessableEntityError(WBInvalidRequestError, openai.UnprocessableEntityError):
    """422: a parameter this model does not support, out of range, or malformed messages."""


class WBContextOverflowError(WBInvalidRequestError, ContextOverflowError):
    """400/422 saying the input does not fit the model's context window."""

    title = "The request does not fit the model's context window"
    advice = (
        "Shorten the input (trim or summarize older messages), lower max_tokens, or use a "
        "model with a larger context window. Not retried."
    )


class WBConcurrencyLimitError(WBInferenceError, openai.RateLimitError, ModelRateLimitError):
    """429 concurrency limit: too many requests in flight for the project/user and model."""

    is_retryable = True
    fallback = Fallback.AFTER_RETRIES
    exit_code = ExitCode.TRANSIENT
    title = (
        "W&B Inference concurrency limit reached: too many requests in flight for this "
        "project/user and model"
    )
    advice = (
        "If it persists, lower max_concurrency (fewer parallel calls for this project and "
        "model), or set fallback_models."
    )


class WBServerError(WBInferenceError, openai.InternalServerError, ModelAPIError):
    """500 or another 5xx but 503: an internal error, usually transient."""

    is_retryable = True
    fallback = Fallback.AFTER_RETRIES
    counts_against_circuit = True
    exit_code = ExitCode.TRANSIENT
    title = "W&B Inference had an internal error"
    advice = "Usually transient; fallback_models can serve the request from another model."


class WBOverloadedError(WBInferenceError, openai.InternalServerError, ModelAPIError):
    """503: the engine is overloaded."""

    is_retryable = True
    fallback = Fallback.AT_ONCE
    counts_against_circuit = True
    exit_code = ExitCode.TRANSIENT
    title = "W&B Inference is overloaded (high traffic)"
    advice = "Usually transient; fallback_models can serve the request from another model."


class WBTimeoutError(WBInferenceError, openai.APITimeoutError, ModelTimeoutError):
    """No answer within the timeout."""

    is_retryable = True
    fallback = Fallback.AFTER_RETRIES
    counts_against_circuit = True
    exit_code = ExitCode.TRANSIENT
    title = "W&B Inference did not answer in time"
    advice = (
        "Reasoning models can take long before the first token: stream the response or "
        "raise timeout=...; fallback_models can serve the request from another model."
    )


class WBDeadlineExceededError(WBTimeoutError):
    """The call's own deadline (RetryPolicy.deadline) ran out on this side."""

    is_retryable = False
    fallback = Fallback.NEVER
    counts_against_circuit = False
    title = "The call's deadline (RetryPolicy.deadline) ran out"
    advice = "Raise the deadline, or use fewer retries or fallback models."


class WBConnectionError(WBInferenceError, openai.APIConnectionError, ModelConnectionError):
    """No answer at all: DNS, refused or reset connection, proxy, TLS."""

    is_retryable = True
    fallback = Fallback.AFTER_RETRIES
    counts_against_circuit = True
    exit_code = ExitCode.TRANSIENT
    title = "Could not reach W&B Inference"
    advice = "Check the network, any proxy, and base_url."


class WBStreamInterruptedError(WBConnectionError):
    """A 200 stream ended (or broke) before its answer did: no finish_reason, no [DONE]."""

    title = "The answer's stream ended before the answer did"
    advice = (
        "The connection was closed mid-answer (a restart, a proxy, a network drop). What "
        "arrived is incomplete: a tool call in it must not be run."
    )
    chunks: int | None = None
    """How many stream events had arrived."""


class WBMalformedResponseError(WBInferenceError, openai.APIResponseValidationError, ModelAPIError):
    """A 200 whose body is no answer: not JSON, HTML, no choices, no message, no events."""

    is_retryable = True
    fallback = Fallback.AFTER_RETRIES
    counts_against_circuit = True
    exit_code = ExitCode.TRANSIENT
    title = "W&B Inference answered 200 with a body that is not an answer"
    advice = "Usually a proxy or a failing engine; fallback_models can serve the request."
    body_start: str | None = None
    """The first few hundred characters of the body, for the report."""


class WBCircuitOpenError(WBInferenceError):
    """The client's circuit breaker refused the call; no request was sent."""

    fallback = Fallback.AT_ONCE
    exit_code = ExitCode.TRANSIENT
    title = "Circuit breaker open: no request was sent"
    advice = "Until the probe, fallback_models can serve the request."
    base_url: str | None = None
    retry_in: float | None = None
    """Seconds until a probe request is let through (also ``retry_after``)."""


class WBBudgetExceededError(WBInferenceError):
    """The client's budget guard refused the call; no request was sent."""

    exit_code = ExitCode.QUOTA
    title = "Budget exceeded: no request was sent"
    advice = (
        "Raise the limit (budget_usd=... or Budget(limit_usd=...)) or start a new budget. "
        "The spend is estimated from catalog prices; W&B's Billing page is authoritative."
    )
    spent_usd: float | None = None
    budget_usd: float | None = None


# --------------------------------------------------------------------------------------
# classify
# --------------------------------------------------------------------------------------


def classify(
    exc: BaseException, *, model: str | None = None, project: str | None = None
) -> BaseException:
    """Map what the ``openai`` SDK raised to the matching W&B error; others unchanged.

    Handles ``openai.APIStatusError`` (and langchain-openai's subclasses of it),
    ``openai.APITimeoutError`` and ``openai.APIConnectionError``.  A
    ``WBInferenceError``, any other exception, and a status W&B does not document
    (405, 408, 409, ...) come back as the very same object.  ``model`` names the model
    in the message (else it is read from the request body); ``project`` is redacted too
    wherever it appears.

    Whatever it returns, the whole chain of ``exc`` has been redacted in place first.
    The original is not chained automatically: ``raise classify(exc) from exc``.
    """
    if isinstance(exc, WBInferenceError):
        return exc
    if isinstance(exc, openai.APIError) and isinstance(exc.__cause__, WBInferenceError):
        return exc.__cause__  # ours, re-wrapped by langchain-openai on its way out
    redact_exception(exc, identities=[project] if project else ())
    if isinstance(exc, openai.APIStatusError):
        return _from_status(exc, model) or exc
    if isinstance(exc, openai.APIConnectionError):
        request = exc.request
        facts = {"model": model or _model_from_request(request), "url": _url(request)}
        if isinstance(exc, openai.APITimeoutError):
            return WBTimeoutError(request=request, **facts)
        cause = _root_cause(exc)
        return WBConnectionError(request=request, hints=(cause,) if cause else (), **facts)
    return exc


def from_error_body(
    payload: Mapping[str, Any], response: Any, *, model: str | None, project: str | None
) -> WBInferenceError:
    """An error sent with a 200 (a stream event, or a JSON body), typed as its HTTP twin.

    Engines and gateways (llama.cpp, vLLM) send ``{"error": {"code", "message", "type"}}``
    after the 200 header; it is classified exactly as the same body with its status
    would be, so it gets the same retry and fallback treatment.
    """
    error = payload.get("error")
    status = _status_of(error)
    twin = httpx2.Response(
        status, json=dict(payload), headers=_headers_of(response), request=_request_of(response)
    )
    body = error if isinstance(error, Mapping) else dict(payload)
    sdk = openai.APIStatusError(f"Error code: {status}", response=twin, body=body)
    redact_exception(sdk, identities=[project] if project else ())
    mapped = _from_status(sdk, model) or WBServerError(
        response=twin, body=body, model=model, server_message=_read_body(body).message
    )
    mapped.annotate(hints=(*mapped.hints, "It was sent inside the 200 answer, after its status."))
    return mapped


_STATUS_BY_NAME = {
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "invalid_request_error": 400,
    "exceed_context_size_error": 400,
    "context_length_exceeded": 400,
    "invalid_api_key": 401,
    "authentication_error": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "overloaded_error": 503,
    "service_unavailable": 503,
}


def _status_of(error: object) -> int:
    """The HTTP status an error body stands for: its numeric code, else its code or type."""
    if not isinstance(error, Mapping):
        return 500
    code = error.get("code")
    with contextlib.suppress(TypeError, ValueError):
        number = int(str(code))
        if 400 <= number <= 599:
            return number
    for name in (code, error.get("type")):
        if isinstance(name, str) and name.lower() in _STATUS_BY_NAME:
            return _STATUS_BY_NAME[name.lower()]
    return 500


_KEPT_HEADERS = ("x-request-id", "request-id", "retry-after", "retry-after-ms")


def _headers_of(response: Any) -> list[tuple[str, str]]:
    """The headers of the 200 that say something about the error inside it."""
    return [(name, v) for name in _KEPT_HEADERS if (v := _header(response, name)) is not None]


def _root_cause(exc: BaseException) -> str | None:
    """The transport's own words for a failed connection: each cause in the chain."""
    said: list[str] = []
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        text = _one_line(str(current), 200)
        if text and not any(text in s for s in said):
            said.append(text)
        current = current.__cause__ or current.__context__
    return f"The transport said: {'; '.join(said)}." if said else None


class _Body(NamedTuple):
    """What an error body says, whatever its shape."""

    message: str | None
    detail: object
    html: bool


def _from_status(exc: openai.APIStatusError, model: str | None) -> WBInferenceError | None:
    status, response, request = exc.status_code, exc.response, _request_of(exc.response)
    body = _read_body(exc.body)
    server = body.message or _strip_sdk_prefix(exc.message)
    text = " ".join(str(p) for p in (server, exc.code, exc.type, _detail_text(body.detail)) if p)
    text = text.lower()
    model = model or _model_from_request(request)
    if status == 404 and model is None and server:
        found = re.search(r"model\s+[`'\"]([^`'\"\s]+)[`'\"]", server, re.IGNORECASE)
        model = found.group(1) if found else None
    headers = getattr(response, "headers", None)
    facts: dict[str, Any] = {
        "model": model,
        "server_message": server,
        "request_id": _request_id(headers) or exc.request_id,
        "retry_after": _parse_retry_after(headers),
        "url": _url(request),
    }
    cls = _status_class(status, text)
    if cls is None:
        return None
    hints: list[str] = []
    if cls is WBPermissionDeniedError:
        facts["reason"] = _permission_reason(text)
        hints += _permission_hints(facts["reason"], html=body.html)
    elif cls is WBAuthenticationError:
        hints += _auth_hints(request, text)
    elif cls is WBQuotaExceededError and status == 429:
        hints.append(
            "W&B sent it as HTTP 429, the pre-October-2025 form of this error; it is not a "
            "rate limit."
        )
    elif cls is WBModelNotFoundError:
        facts.update(_catalog_facts(model))
        hints += _not_found_hints(model, facts)
        if facts["url"]:
            hints.append(f"The request went to {facts['url']}.")
    elif issubclass(cls, WBInvalidRequestError):
        param = exc.param or _param_from_detail(body.detail) or _param_from_text(text)
        facts.update(detail=body.detail, param=param)
        if body.detail is not None:
            facts["server_message"] = _detail_text(body.detail)
        if cls is not WBContextOverflowError:
            hints += _invalid_hints(param, text)
    elif cls is WBConcurrencyLimitError and facts["retry_after"] is not None:
        hints.append(f"The service asked to wait {facts['retry_after']:g}s.")
    return cls(response=response, body=exc.body, hints=tuple(hints), **facts)


def _status_class(status: int, text: str) -> type[WBInferenceError] | None:
    """The class for a status and the body's text (lower case), ``None`` if undocumented."""
    if status == 401:
        return WBAuthenticationError
    if status == 402:
        return WBQuotaExceededError
    if status == 403:
        return WBPermissionDeniedError
    if status == 404:
        return WBModelNotFoundError
    if status in (400, 413, 422):
        if any(marker in text for marker in _CONTEXT_OVERFLOW_MARKERS):
            return WBContextOverflowError
        return WBUnprocessableEntityError if status == 422 else WBInvalidRequestError
    if status == 429:
        if "personal account" in text:
            return WBPermissionDeniedError
        if "quota" in text or "billing" in text or "credit" in text:
            return WBQuotaExceededError
        return WBConcurrencyLimitError  # the documented meaning of a 429, whatever its text
    if status == 503 or (status >= 500 and "overloaded" in text):
        return WBOverloadedError
    if status >= 500:
        return WBServerError
    return None


_CONTEXT_OVERFLOW_MARKERS = (
    # OpenAI-style codes and W&B / LiteLLM wordings
    "context_length_exceeded",
    "context window",
    "prompt is too long",
    "input tokens exceed",
    "contextwindowexceedederror",
    # vLLM: "This model's maximum context length is N tokens. However, you requested M"
    # and "The decoder prompt (length N) is longer than the maximum model length of M"
    "maximum context length",
    "maximum model length",
    # SGLang: "The input (N tokens) is longer than the model's context length (M tokens)."
    "context length",
    # llama.cpp: type "exceed_context_size_error", "request (N tokens) exceeds the
    # available context size (M tokens), try increasing it"
    "exceed_context_size",
    "available context size",
    # TGI: "Input validation error: `inputs` tokens + `max_new_tokens` must be <= M."
    "tokens + `max_new_tokens` must be <=",
)
_KNOWN_PARAMS = (
    "frequency_penalty",
    "presence_penalty",
    "top_logprobs",
    "logprobs",
    "logit_bias",
    "response_format",
    "reasoning_effort",
    "chat_template_kwargs",
    "cache_salt",
    "stream_options",
    "parallel_tool_calls",
    "tool_choice",
    "tools",
    "temperature",
    "top_p",
    "max_completion_tokens",
    "max_tokens",
    "seed",
    "stop",
    "messages",
    "model",
    "n",
)


# --------------------------------------------------------------------------------------
# Hints: the facts-based sentences of a message
# --------------------------------------------------------------------------------------


def _auth_hints(request: Any, text: str) -> list[str]:
    hints = []
    if "missing bearer" in text or "missing authentication" in text or "no api key" in text:
        hints.append("The request carried no API key: set WANDB_API_KEY or pass api_key=....")
    if _header(request, "openai-project") is None:
        hints.append(
            "No team/project was sent, so W&B used your default entity and the project "
            "'inference'; pass project='team/project' naming a team and project you belong to."
        )
    else:
        hints.append(
            "A team/project was sent: check that it exists and that the key's user is a "
            "member of it (project=...)."
        )
    return hints


def _permission_reason(text: str) -> PermissionReason:
    if "personal account" in text:
        return "personal_account"
    if "gateway" in text or "not enabled" in text:
        return "gateway"
    if "country" in text or "territory" in text or "region" in text:
        return "region"
    return "unknown"


_PERMISSION_HINTS: dict[str, str] = {
    "region": "W&B Inference is not available from your country, region, or territory.",
    "gateway": (
        "W&B Inference is not enabled for your organization: an organization admin must "
        "enable W&B Inference before any request can succeed."
    ),
    "personal_account": (
        "W&B Inference isn't available for personal accounts: use a team project, "
        "project='team/project' (the OpenAI-Project header), naming a W&B team you belong to."
    ),
    "unknown": "Check the team/project and that its user may use W&B Inference.",
}


def _permission_hints(reason: PermissionReason, *, html: bool) -> list[str]:
    hints = [_PERMISSION_HINTS[reason]]
    if html:
        hints.append(
            "The answer was an HTML page, not a W&B error: a proxy or CDN in front of the "
            "service may have blocked the request (an unusual User-Agent, say)."
        )
    return hints


def _catalog_facts(model: str | None) -> dict[str, Any]:
    """``replacement`` and ``suggestion`` for a 404, from the catalog; never raises."""
    if not model:
        return {}
    try:
        info = model_info(model)
        suggestion = suggest_model_id(model) if info is None else None
    except Exception:  # a failure here must not hide the error being reported
        return {}
    return {
        "replacement": info.replacement if info else None,
        "suggestion": suggestion if suggestion != model else None,
    }


def _not_found_hints(model: str | None, facts: Mapping[str, Any]) -> list[str]:
    hints = []
    try:
        info = model_info(model) if model else None
    except Exception:
        info = None
    use = f"; use {facts['replacement']!r} instead." if facts.get("replacement") else "."
    if info is not None and (
        info.lifecycle is Lifecycle.RETIRED
        or (info.retired_on is not None and info.retired_on <= datetime.date.today())
    ):
        when = f" on {info.retired_on.isoformat()}" if info.retired_on else ""
        hints.append(f"{model!r} was retired{when}{use}")
    elif info is not None and info.lifecycle is Lifecycle.DEPRECATED:
        hints.append(f"{model!r} is deprecated{use}")
    elif facts.get("replacement"):
        hints.append(f"The catalog names {facts['replacement']!r} as its replacement.")
    if facts.get("suggestion"):
        hints.append(f"Model IDs are case-sensitive: did you mean {facts['suggestion']!r}?")
    elif model and model.strip().lower().startswith("wandb-artifact:"):
        hints.append(
            "For a LoRA adapter check the artifact path and version "
            "(wandb-artifact:///team/project/name:version) and that the project you send "
            "can read it."
        )
    return hints


def _invalid_hints(param: str | None, text: str) -> list[str]:
    if param == "model" or ("model" in text and _MODEL_ID_REFUSED.search(text)):
        return [
            "The model ID itself was refused: check its spelling (IDs are case-sensitive; "
            "`ChatWBInference.list_models()` lists them) or, for a LoRA artifact "
            "(wandb-artifact:///team/project/name:version), that it names a base model "
            "that serves LoRA adapters."
        ]
    if not param:
        return []
    return [
        f"Parameter {param!r} was refused. Remove or change it: this model may not support "
        "it (some models lack frequency_penalty, logprobs or response_format), or its value "
        "is out of range."
    ]


_MODEL_ID_REFUSED = re.compile(r"model id|invalid model|model .*(?:invalid|not (?:found|exist))")


# --------------------------------------------------------------------------------------
# Reading bodies, headers and requests
# --------------------------------------------------------------------------------------


def _read_body(body: object) -> _Body:
    """The message and ``detail`` of any of W&B's body shapes.

    ``{"error": {"code", "message", "type"?}}``, the SDK's inner ``{"code", "message"}``,
    ``{"detail": str | [{"loc", "msg", "type"}]}``, ``{"error": "text"}``,
    ``{"message": ...}``, or plain (possibly HTML) text.  ``code``, ``param`` and
    ``type`` are the SDK's (``openai.APIError`` parses them).
    """
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str) and body.strip().startswith(("{", "[")):
        with contextlib.suppress(ValueError):
            body = json.loads(body)
    if isinstance(body, Mapping):
        error = body.get("error")
        inner: Mapping[Any, Any] = error if isinstance(error, Mapping) else body
        message = inner.get("message")
        if not (isinstance(message, str) and message.strip()):
            message = error if isinstance(error, str) and error.strip() else None
        detail = body.get("detail", inner.get("detail"))
        if message is None and detail is not None:
            message = _detail_text(detail)
        return _Body(message.strip() if message else None, detail, html=False)
    if isinstance(body, str) and body.strip():
        text = body.strip()
        if text.startswith("<"):
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            named = f": {_one_line(title.group(1))}" if title else ""
            return _Body(f"HTML page{named}", None, html=True)
        return _Body(_one_line(text), None, html=False)
    return _Body(None, None, html=False)


def _detail_text(detail: object, limit: int = 1000) -> str | None:
    """FastAPI's ``[{"loc": [...], "msg": ..., "type": ...}]`` as ``loc: msg; ...``."""
    if detail is None:
        return None
    if isinstance(detail, str):
        return _one_line(detail, limit)
    parts = []
    for item in detail if isinstance(detail, list) else [detail]:
        if isinstance(item, Mapping):
            loc = ".".join(str(p) for p in _loc(item.get("loc")))
            msg = item.get("msg") or item.get("message") or item.get("type") or ""
            parts.append(f"{loc}: {msg}" if loc else str(msg))
        else:
            parts.append(str(item))
    return _one_line("; ".join(p for p in parts if p), limit)


def _loc(loc: object) -> list[object]:
    """A FastAPI ``loc`` without its leading ``body``/``query``/``header``."""
    path = list(loc) if isinstance(loc, list | tuple) else ([] if loc is None else [loc])
    return path[1:] if path and path[0] in ("body", "query", "header") else path


def _param_from_detail(detail: object) -> str | None:
    for item in detail if isinstance(detail, list) else [detail]:
        if isinstance(item, Mapping):
            names = [str(p) for p in _loc(item.get("loc")) if not isinstance(p, int)]
            if names:
                return names[0]
    return None


def _param_from_text(text: str) -> str | None:
    for name in _KNOWN_PARAMS:
        if re.search(rf"(?<![a-z_]){re.escape(name)}(?![a-z_])", text):
            return name
    return None


def _strip_sdk_prefix(message: str | None) -> str | None:
    """``"Error code: 503 - text"`` -> ``"text"``; ``"Error code: 503"`` -> ``None``."""
    stripped = re.sub(r"^Error code: \d+(?: - )?", "", message or "").strip()
    return stripped or None


def _one_line(text: str, limit: int = 500) -> str:
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


def _header(message: Any, name: str) -> str | None:
    try:
        value = message.headers.get(name)
    except Exception:  # no message, or no headers
        return None
    return value if isinstance(value, str) and value else None


def _request_id(headers: Any) -> str | None:
    for name in ("x-request-id", "request-id"):
        try:
            value = headers.get(name) if headers is not None else None
        except Exception:
            return None
        if isinstance(value, str) and value:
            return value
    return None


def _request_of(response: Any) -> Any:
    try:
        return response.request
    except Exception:  # httpx raises RuntimeError when the response has no request
        return None


def _model_from_request(request: Any) -> str | None:
    try:
        payload = json.loads(request.content) if request is not None and request.content else None
    except Exception:
        return None
    model = payload.get("model") if isinstance(payload, Mapping) else None
    return model if isinstance(model, str) and model else None


def _url(request: Any) -> str | None:
    """Where the request went, without query, fragment or user info."""
    try:
        parts = urllib.parse.urlsplit(str(request.url))
    except Exception:
        return None
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")) or None


def _parse_retry_after(headers: Any) -> float | None:
    """``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date), as seconds.

    ``None`` when absent or unparseable (negative, NaN, infinite, garbage).
    """
    try:
        in_ms, in_s = headers.get("retry-after-ms"), headers.get("retry-after")
    except Exception:
        return None
    for value, scale in ((in_ms, 1000.0), (in_s, 1.0)):
        try:
            number = float(str(value).strip()) if value is not None else math.nan
        except ValueError:
            continue
        if math.isfinite(number) and number >= 0:
            return number / scale
    if isinstance(in_s, str) and in_s.strip():
        try:
            when = email.utils.parsedate_to_datetime(in_s.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    return None
