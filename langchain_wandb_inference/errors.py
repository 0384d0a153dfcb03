"""Typed errors for W&B Inference, and the mapping from the ``openai`` SDK's exceptions.

W&B Inference reuses HTTP statuses for different conditions -- a 429 is a concurrency
limit, but also the pre-October-2025 form of "out of credits" and the 2025 refusal of
personal accounts -- so :func:`classify` reads the status *and* the message, never the
status alone.  Every message says what happened and what to do about it, with the
status, model and request id; none ever contains the API key.

Hierarchy, with the status each class stands for and the ``openai`` exception it also
is (so existing ``except openai.RateLimitError`` clauses keep working)::

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
    ├── WBCircuitOpenError              circuit breaker open; no request was sent
    └── WBBudgetExceededError           budget guard; no request was sent

Each is also the matching ``langchain_core.exceptions`` class: ModelAuthenticationError,
ModelPermissionDeniedError, ModelNotFoundError, ModelInvalidRequestError,
ModelRateLimitError, ModelAPIError (5xx), ModelTimeoutError, ModelConnectionError;
quota, circuit and budget errors are plain ``ModelError`` instances.

``is_retryable`` (LangChain's flag) is true for the concurrency 429, 5xx, timeouts and
connection failures, false for everything else.

Two deliberate choices:

* **A quota error is not a rate limit.**  ``WBQuotaExceededError`` is an
  ``openai.APIStatusError`` but *not* an ``openai.RateLimitError`` or a LangChain
  ``ModelRateLimitError``, even when W&B sends it as a 429: generic retry code retries
  every rate limit, and retrying an exhausted quota only wastes calls.  Catch
  ``WBQuotaExceededError`` (or ``openai.APIStatusError``) for it.
* **One class for every invalid request.**  ``except WBInvalidRequestError`` catches
  400, 413 and 422; a 422 is raised as its subclass ``WBUnprocessableEntityError``,
  which is also an ``openai.UnprocessableEntityError``, so code written against the
  SDK keeps catching it (it is an ``openai.BadRequestError`` too, with
  ``status_code == 422``).  A context-window overflow is ``WBContextOverflowError``,
  also a LangChain ``ContextOverflowError``, whatever its status.

Usage -- map an SDK exception and keep the original as ``__cause__``::

    try:
        client.chat.completions.create(model=model, messages=messages)
    except openai.OpenAIError as exc:
        mapped = classify(exc, model=model)
        if mapped is exc:  # not something classify knows: re-raise as is
            raise
        raise mapped from exc

The classified error keeps ``response``/``request`` like the SDK's, but they are copies
with the ``Authorization`` header (and any other credential header) and the
``OpenAI-Project`` header (the W&B team/project) replaced by ``[REDACTED]``.  When an
object cannot be copied, the error keeps a bare stand-in (same method, URL and status,
no body, no credentials), never the original.  Messages may name the team/project (it
is not a secret, and a 401 is often about it); they never contain the API key.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

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
from typing_extensions import NotRequired, TypedDict, Unpack

from langchain_wandb_inference.models import model_info, suggest_model_id

if TYPE_CHECKING:
    from langchain_wandb_inference.pipeline import Attempt

__all__ = [
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
    "WBModelNotFoundError",
    "WBOverloadedError",
    "WBPermissionDeniedError",
    "WBQuotaExceededError",
    "WBServerError",
    "WBTimeoutError",
    "WBUnprocessableEntityError",
    "classify",
    "retry_after_seconds",
]

PermissionReason = Literal["region", "gateway", "personal_account", "unknown"]
"""Why W&B refused access: an unsupported location, Inference not enabled for the
organization, a personal (non-team) account, or something else."""

KEYS_URL = "https://wandb.ai/authorize"
DEFAULT_BASE_URL = "https://api.inference.wandb.ai/v1"
_LIST_MODELS = "`ChatWBInference.list_models()` or `wb-inference models`"


class _RequestLike(Protocol):
    """An ``httpx2.Request`` (what openai 3 uses), or an ``httpx.Request`` built by hand."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> Any: ...

    @property
    def headers(self) -> Any: ...


class _ResponseLike(Protocol):
    """An ``httpx2.Response`` (what openai 3 uses), or an ``httpx.Response`` built by hand."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Any: ...


class _StatusContext(TypedDict):
    """The keywords of :class:`_WBStatusError`, passed on by the subclasses with extras."""

    response: _ResponseLike
    body: object | None
    model: NotRequired[str | None]
    server_message: NotRequired[str | None]
    retry_after: NotRequired[float | None]


class _Unset(enum.Enum):
    """The type of :data:`_UNSET`: "not given", as opposed to ``None`` ("none")."""

    UNSET = "unset"


_UNSET = _Unset.UNSET


class _RequestContext(TypedDict, total=False):
    """The keywords :class:`WBTimeoutError` takes besides its positional ``request``."""

    model: str | None
    message: str | None


# --------------------------------------------------------------------------------------
# The classes
# --------------------------------------------------------------------------------------


class WBInferenceError(ModelError):
    """Base class of every error this package raises about a W&B Inference call.

    Attributes set on every instance (``None`` when unknown or not applicable):

    - ``message``: the full, actionable message (also ``str(exc)``, without history).
    - ``status_code``: the HTTP status, ``None`` when no response arrived.
    - ``body``: the decoded error body as the ``openai`` SDK gave it (it may already be
      the inner ``error`` object), with any credential redacted.
    - ``server_message``: W&B's own error text, verbatim (or the formatted ``detail``).
    - ``request_id``: the response's ``x-request-id`` (quote it to W&B support).
    - ``model``: the model the request was for.
    - ``retry_after``: seconds the service asked to wait (``Retry-After`` /
      ``retry-after-ms``); for an open circuit, the seconds until the next probe.
    - ``history``: one ``Attempt`` per model tried, set by the fallback policy when
      every model failed (empty otherwise); ``str(exc)`` then lists them.
    - ``is_retryable`` (LangChain): whether retrying the same request may succeed.
    """

    message: str
    body: object | None = None
    request_id: str | None = None
    model: str | None = None
    retry_after: float | None = None
    server_message: str | None = None
    history: list[Attempt]

    if TYPE_CHECKING:
        # Typed read-only here because the openai parents narrow it (``int``, or
        # ``Literal[401]`` and friends), which a plain ``int | None`` attribute on this
        # base would conflict with; at runtime it is a plain class default.
        @property
        def status_code(self) -> int | None:
            """HTTP status of the response, ``None`` when no response arrived."""

    else:
        status_code = None

    def __init__(self, *args: object) -> None:
        # Cooperative: the openai parents reach this through ``super().__init__(message)``.
        super().__init__(*args)
        self.message = str(args[0]) if args else ""
        self.history = []

    def __str__(self) -> str:
        text = super().__str__()
        history = getattr(self, "history", None)
        if not history:
            return text
        lines = [text, "Models tried, in order:"]
        for attempt in history:
            error = _one_line(str(getattr(attempt, "error", "")), limit=200)
            kind = getattr(attempt, "error_type", "error")
            lines.append(f"  - {getattr(attempt, 'model', '?')}: {kind}: {error}")
        return "\n".join(lines)

    def _set_context(
        self,
        *,
        model: str | None,
        server_message: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.model = model
        self.server_message = server_message
        self.retry_after = retry_after
        if request_id is not None:
            self.request_id = request_id


class _WBStatusError(openai.APIStatusError, WBInferenceError):
    """The constructor every HTTP-status error shares (first among their bases).

    Keeps no secret: the message, body, server message and response are copies with
    every credential the request carried redacted (see :func:`_sanitize`).  Hands them
    to the ``openai`` parent next in the MRO (an ``openai.APIStatusError``), then
    records ``model``, ``server_message``, ``request_id`` and ``retry_after``.

    ``retry_after`` is read from the response headers when not given (``classify``
    passes the value it already parsed, so the headers are parsed once).
    """

    def __init__(
        self,
        message: str,
        *,
        response: _ResponseLike,
        body: object | None,
        model: str | None = None,
        server_message: str | None = None,
        retry_after: float | _Unset | None = _UNSET,
    ) -> None:
        if isinstance(retry_after, _Unset):
            retry_after = _parse_retry_after(getattr(response, "headers", None))
        # Read from the original: the copy may be a stand-in without headers.
        request_id = _request_id(response)
        safe = _sanitize(response, body, message, server_message)
        super().__init__(safe.message, response=safe.response, body=safe.body)
        self._set_context(
            model=model,
            server_message=safe.server_message,
            request_id=request_id,
            retry_after=retry_after,
        )


class WBAuthenticationError(
    _WBStatusError, openai.AuthenticationError, WBInferenceError, ModelAuthenticationError
):
    """401: the API key is missing, wrong, expired or revoked, or the team/project is wrong.

    Never retried.  Check ``WANDB_API_KEY`` and the team/project you send.
    """


class WBQuotaExceededError(_WBStatusError, openai.APIStatusError, WBInferenceError):
    """402 (or, before October 2025, 429): credits used up or the monthly spend cap reached.

    Deliberately *not* an ``openai.RateLimitError`` nor a ``ModelRateLimitError``: it is
    not a rate limit, and retrying it cannot succeed.  Buy credits or raise the limit.
    """

    is_retryable = False


class WBPermissionDeniedError(
    _WBStatusError, openai.PermissionDeniedError, WBInferenceError, ModelPermissionDeniedError
):
    """403 (or the 2025 personal-account 429): the service refuses this caller.

    ``reason`` says why: ``"region"`` (unsupported location), ``"gateway"`` (an org admin
    must enable W&B Inference), ``"personal_account"`` (use a team project) or
    ``"unknown"``.  Never retried.
    """

    reason: PermissionReason

    def __init__(
        self,
        message: str,
        *,
        reason: PermissionReason = "unknown",
        **context: Unpack[_StatusContext],
    ) -> None:
        super().__init__(message, **context)
        self.reason = reason


class WBModelNotFoundError(
    _WBStatusError, openai.NotFoundError, WBInferenceError, ModelNotFoundError
):
    """404: unknown or case-mismatched model ID, retired model, or wrong base URL.

    ``replacement`` is the catalog's suggested successor of a retired or deprecated
    model; ``suggestion`` the correctly spelled ID for a near miss (wrong case, say).
    Not retried with the same model; a fallback model may serve.
    """

    replacement: str | None
    suggestion: str | None

    def __init__(
        self,
        message: str,
        *,
        replacement: str | None = None,
        suggestion: str | None = None,
        **context: Unpack[_StatusContext],
    ) -> None:
        super().__init__(message, **context)
        self.replacement = replacement
        self.suggestion = suggestion


class WBInvalidRequestError(
    _WBStatusError, openai.BadRequestError, WBInferenceError, ModelInvalidRequestError
):
    """400, 413 or 422: the service rejected the request itself.  Never retried.

    ``detail`` is the body's ``detail`` (a string, or FastAPI's list of
    ``{"loc", "msg", "type"}``); ``param`` the offending parameter when known.  A 422
    is raised as :class:`WBUnprocessableEntityError`, a context overflow as
    :class:`WBContextOverflowError`; both are subclasses, so this class catches all.
    """

    detail: object

    def __init__(
        self,
        message: str,
        *,
        detail: object = None,
        param: str | None = None,
        **context: Unpack[_StatusContext],
    ) -> None:
        super().__init__(message, **context)
        # Scrubbed of the same secrets as the body (those the original request carried).
        self.detail = _scrub(detail, _secrets_in(_response_request(context["response"])))
        if param is not None:
            self.param = param


# Both parents pin ``status_code`` to a different Literal; the instance holds the real one.
class WBUnprocessableEntityError(  # type: ignore[misc]
    WBInvalidRequestError, openai.UnprocessableEntityError
):
    """422: a parameter this model does not support, out of range, or malformed messages.

    Also an ``openai.UnprocessableEntityError`` (what the SDK raised) and, through
    :class:`WBInvalidRequestError`, an ``openai.BadRequestError``.  Show ``detail``.
    """


class WBContextOverflowError(WBInvalidRequestError, ContextOverflowError):
    """The input does not fit the model's context window (a LangChain ``ContextOverflowError``).

    Shorten the input, lower ``max_tokens``, or use a model with a larger window.
    """


class WBConcurrencyLimitError(
    _WBStatusError, openai.RateLimitError, WBInferenceError, ModelRateLimitError
):
    """429 concurrency limit: too many requests in flight for the project/user and model.

    Retryable (exponential backoff); lower ``max_concurrency`` if it persists.
    """


class WBServerError(_WBStatusError, openai.InternalServerError, WBInferenceError, ModelAPIError):
    """500 or another 5xx (503 excepted): an internal error, usually transient.  Retryable."""


class WBOverloadedError(
    _WBStatusError, openai.InternalServerError, WBInferenceError, ModelAPIError
):
    """503: the engine is overloaded.  Retryable; a fallback model may serve at once."""


class _WBRequestError(openai.APIConnectionError, WBInferenceError):
    """The constructor the errors without a response share (first among their bases).

    Keeps no secret: the request is a copy with its credential headers redacted (or a
    bare stand-in when it cannot be copied), and ``message`` is scrubbed of them.
    Without ``message``, :meth:`_default_message`.
    """

    def __init__(
        self,
        *,
        request: _RequestLike,
        model: str | None = None,
        message: str | None = None,
    ) -> None:
        secrets = _secrets_in(request)
        safe_request = _redact_request(request, secrets)
        if safe_request is None:
            safe_request = _stand_in_request(request, secrets)
        text = (
            _scrub_text(message, secrets)
            if message is not None
            else self._default_message(safe_request, model)
        )
        # Not super(): APITimeoutError.__init__ would hard-code "Request timed out.".
        openai.APIConnectionError.__init__(self, message=text, request=safe_request)
        self._set_context(model=model)

    def _default_message(self, request: Any, model: str | None) -> str:
        return _connection_message(request, model, cause=None)


class WBTimeoutError(_WBRequestError, openai.APITimeoutError, WBInferenceError, ModelTimeoutError):
    """No answer within the timeout.  Retryable.

    ``message`` defaults to an explanation built from the request and model.
    """

    def __init__(self, request: _RequestLike, **context: Unpack[_RequestContext]) -> None:
        super().__init__(request=request, **context)

    def _default_message(self, request: Any, model: str | None) -> str:
        return _timeout_message(request, model)


class WBDeadlineExceededError(WBTimeoutError):
    """The call's own deadline (``RetryPolicy.deadline``) ran out on this side.

    Raised when no time was left to send (a late fallback, a wait for a concurrency
    slot) or when a request cut short to fit the deadline timed out.  It says nothing
    about the service's health, so the circuit breaker ignores it; it is not retried,
    since no time is left.
    """

    is_retryable = False


class WBConnectionError(
    _WBRequestError, openai.APIConnectionError, WBInferenceError, ModelConnectionError
):
    """No answer at all (DNS, refused or reset connection, proxy, TLS).  Retryable.

    ``message`` (keyword-only, like ``request``) defaults to an explanation built from
    the request and model.
    """


class WBCircuitOpenError(WBInferenceError):
    """The client's circuit breaker refused the call; no request was sent.

    ``model`` and ``base_url`` name the circuit; ``retry_in`` (also ``retry_after``) is
    the number of seconds until a probe request is let through.  Not retryable as is:
    the fallback policy hands over to the next model.
    """

    is_retryable = False

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        retry_in: float,
        message: str | None = None,
    ) -> None:
        if message is None:
            message = (
                f"Circuit breaker open for model {model!r} at {base_url}: its recent requests "
                "failed repeatedly (5xx, timeouts or lost connections), so this call was "
                f"refused without sending a request. A probe request is let through in "
                f"{max(0.0, retry_in):.1f}s; until then fallback_models can serve the request."
            )
        super().__init__(message)
        self.model = model
        self.base_url = base_url
        self.retry_in = retry_in
        self.retry_after = retry_in


class WBBudgetExceededError(WBInferenceError):
    """The client's budget guard refused the call; no request was sent.  Not retryable.

    ``spent_usd`` is the estimated spend so far, ``budget_usd`` the limit.
    """

    is_retryable = False

    def __init__(
        self,
        *,
        spent_usd: float,
        budget_usd: float,
        model: str | None = None,
        message: str | None = None,
    ) -> None:
        if message is None:
            target = f" to model {model!r}" if model else ""
            message = (
                f"Budget exceeded: an estimated ${spent_usd:.4f} of the ${budget_usd:.2f} "
                f"budget is spent, so no request was sent{target}. Raise the limit "
                "(budget_usd=... or Budget(limit_usd=...)) or start a new budget. The spend "
                "is estimated from catalog prices; W&B's Billing page is authoritative."
            )
        super().__init__(message)
        self.model = model
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd


# --------------------------------------------------------------------------------------
# classify and retry_after_seconds
# --------------------------------------------------------------------------------------


def classify(exc: BaseException, *, model: str | None = None) -> BaseException:
    """Map an ``openai`` SDK exception to the matching W&B error; return others unchanged.

    Handles ``openai.APIStatusError`` (and langchain-openai's subclasses of it),
    ``openai.APITimeoutError`` and ``openai.APIConnectionError``.  A
    ``WBInferenceError``, any other exception, and a status W&B does not document
    (e.g. 405, 408, 409) come back as the very same object.  ``model`` names the model
    in the message; without it the model is read from the request body.

    The original is not chained automatically: use ``raise classify(exc) from exc``
    (re-raise plainly when the result ``is exc``) to keep it as ``__cause__``.
    """
    if isinstance(exc, WBInferenceError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _classify_status(exc, model) or exc
    if isinstance(exc, openai.APITimeoutError):
        return WBTimeoutError(exc.request, model=model or _model_from_request(exc.request))
    if isinstance(exc, openai.APIConnectionError):
        model = model or _model_from_request(exc.request)
        cause = exc.__cause__ or exc.__context__
        cause_text = str(cause) if cause is not None and str(cause) else None
        message = _connection_message(exc.request, model, cause=cause_text)
        return WBConnectionError(message=message, request=exc.request, model=model)
    return exc


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds the service asked to wait before retrying, or ``None``.

    For a ``WBInferenceError``, its ``retry_after``: read from the response headers once,
    when the error was built (an HTTP date counts from then), or for an open circuit the
    seconds until the next probe.  For any other exception with a ``response``, read
    from its headers now: ``retry-after-ms`` (milliseconds), else ``retry-after``
    (seconds, or an HTTP date: the seconds until then, at least 0).  ``None`` when absent
    or unparseable (negative, NaN, infinite, garbage).
    """
    if isinstance(exc, WBInferenceError):
        return exc.retry_after
    response = getattr(exc, "response", None)
    if response is None:
        return None
    return _parse_retry_after(getattr(response, "headers", None))


# --------------------------------------------------------------------------------------
# Status classification and messages
# --------------------------------------------------------------------------------------


@dataclass
class _ErrorInfo:
    """What the body says, whatever its shape."""

    message: str | None = None
    code: str | None = None
    type: str | None = None
    param: str | None = None
    detail: object = None
    html: bool = False

    def haystack(self) -> str:
        parts = [self.message, self.code, self.type]
        if self.detail is not None and not isinstance(self.detail, str):
            parts.append(_format_detail(self.detail))
        elif isinstance(self.detail, str):
            parts.append(self.detail)
        return " ".join(p for p in parts if p).lower()


_CONTEXT_OVERFLOW_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "maximum model length",
    "prompt is too long",
    "input tokens exceed",
    "contextwindowexceedederror",
)
_KNOWN_PARAMS = (
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
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


def _classify_status(exc: openai.APIStatusError, model: str | None) -> WBInferenceError | None:
    status = exc.status_code
    response = exc.response
    info = _parse_body(exc.body)
    if info.message is None:
        info.message = _strip_sdk_prefix(exc.message)
    text = info.haystack()
    request = _response_request(response)
    model = model or _model_from_request(request)
    if status == 404 and model is None and info.message:
        model = _model_from_message(info.message)
    server = info.message
    ctx = _Context(status, model, _request_id(response) or exc.request_id, request)
    # Parsed once, here: the message uses it and the error stores it.
    retry_after = _parse_retry_after(getattr(response, "headers", None))
    base: dict[str, Any] = {
        "response": response,
        "body": exc.body,
        "model": model,
        "server_message": server,
        "retry_after": retry_after,
    }

    if status == 401:
        return WBAuthenticationError(_auth_message(ctx, server, text), **base)
    if status == 402:
        return WBQuotaExceededError(_quota_message(ctx, server), **base)
    if status == 403:
        reason = _permission_reason(text)
        return WBPermissionDeniedError(
            _permission_message(ctx, server, reason, html=info.html), reason=reason, **base
        )
    if status == 404:
        replacement, suggestion, catalog_note = _catalog_hints(model)
        return WBModelNotFoundError(
            _not_found_message(ctx, server, catalog_note, suggestion),
            replacement=replacement,
            suggestion=suggestion,
            **base,
        )
    if status in (400, 413, 422):
        param = info.param or _param_from_detail(info.detail) or _param_from_text(text)
        shown = _format_detail(info.detail) if info.detail is not None else server
        if _is_context_overflow(text):
            return WBContextOverflowError(
                _context_overflow_message(ctx, shown), detail=info.detail, param=param, **base
            )
        cls = WBUnprocessableEntityError if status == 422 else WBInvalidRequestError
        return cls(_invalid_message(ctx, shown, param), detail=info.detail, param=param, **base)
    if status == 429:
        if "personal account" in text:
            return WBPermissionDeniedError(
                _permission_message(ctx, server, "personal_account", html=info.html),
                reason="personal_account",
                **base,
            )
        if _is_quota(text):
            return WBQuotaExceededError(_quota_message(ctx, server), **base)
        # The documented meaning of a 429; an unknown text is treated the same way.
        return WBConcurrencyLimitError(_concurrency_message(ctx, server, retry_after), **base)
    if status == 503 or (status >= 500 and "overloaded" in text):
        return WBOverloadedError(_server_message(ctx, server, overloaded=True), **base)
    if status >= 500:
        return WBServerError(_server_message(ctx, server, overloaded=False), **base)
    return None


def _is_quota(text: str) -> bool:
    return "quota" in text or "billing" in text or "credit" in text


def _is_context_overflow(text: str) -> bool:
    return any(marker in text for marker in _CONTEXT_OVERFLOW_MARKERS)


def _permission_reason(text: str) -> PermissionReason:
    if "personal account" in text:
        return "personal_account"
    if "gateway" in text or "not enabled" in text:
        return "gateway"
    if "country" in text or "territory" in text or "region" in text:
        return "region"
    return "unknown"


class _Context(NamedTuple):
    status: int
    model: str | None
    request_id: str | None
    request: Any

    def describe(self, *, with_model: bool = True) -> str:
        parts = [f"HTTP {self.status}"]
        if self.model and with_model:
            parts.append(f"model {self.model!r}")
        if self.request_id:
            parts.append(f"request id {self.request_id!r}")
        return ", ".join(parts)

    def project_advice(self) -> str:
        project = _header(self.request, "openai-project")
        if project:
            return (
                f"that the team/project {project!r} (sent as the OpenAI-Project header, "
                "project=...) exists and that the key's user is a member of it"
            )
        return (
            "the team/project: none was sent, so W&B used your default entity and the "
            "project 'inference'; pass project='team/project' (the OpenAI-Project header) "
            "naming a team and project you belong to"
        )


def _said(ctx: _Context, server: str | None, *, with_model: bool = True) -> str:
    """Format the status context and the server's words: ``(HTTP 429, ...): "text".``."""
    if not server:
        return f"({ctx.describe(with_model=with_model)}): no error message in the response."
    end = "" if server.endswith((".", "!", "?")) else "."
    return f'({ctx.describe(with_model=with_model)}): "{server}"{end}'


def _auth_message(ctx: _Context, server: str | None, text: str) -> str:
    if "missing bearer" in text or "missing authentication" in text or "no api key" in text:
        head = "W&B Inference received no API key"
        advice = f"Set WANDB_API_KEY or pass api_key=... (get a key at {KEYS_URL})."
    else:
        head = "W&B Inference rejected the credentials"
        advice = (
            f"Check WANDB_API_KEY (or api_key=...): it may be wrong, expired or revoked; "
            f"copy a valid key from {KEYS_URL}. Also check {ctx.project_advice()} "
            "(a wrong entity or project is also answered with 401)."
        )
    return f"{head} {_said(ctx, server)} {advice} Not retried: retrying cannot fix credentials."


def _quota_message(ctx: _Context, server: str | None) -> str:
    legacy = (
        " W&B sent it as HTTP 429, the pre-October-2025 form of this error; it is not a rate limit."
        if ctx.status == 429
        else ""
    )
    return (
        "W&B Inference credits are used up or the monthly spend limit was reached "
        f"{_said(ctx, server)} Buy credits or raise the monthly spend limit on your W&B "
        f"organization's Billing page (and set an alert there before the limit).{legacy} "
        "Not retried: retrying cannot succeed until the quota is raised."
    )


def _permission_message(
    ctx: _Context, server: str | None, reason: PermissionReason, *, html: bool
) -> str:
    if reason == "region":
        head = "W&B Inference is not available from your country, region, or territory"
        advice = "Requests from this location are refused."
    elif reason == "gateway":
        head = "W&B Inference is not enabled for your organization"
        advice = (
            "An organization admin must enable W&B Inference for the organization "
            "before any request can succeed."
        )
    elif reason == "personal_account":
        head = "W&B Inference isn't available for personal accounts"
        advice = (
            "Use a team project: pass project='team/project' (sent as the OpenAI-Project "
            "header) naming a W&B team you belong to."
        )
    else:
        head = "W&B Inference refused the request (permission denied)"
        advice = f"Check {ctx.project_advice()}, and that its user may use W&B Inference."
        if html:
            advice += (
                " The answer was an HTML page, not a W&B error: a proxy or CDN in front of "
                "the service may have blocked the request (an unusual User-Agent, say)."
            )
    return f"{head} {_said(ctx, server)} {advice} Not retried: retrying cannot succeed."


def _not_found_message(
    ctx: _Context, server: str | None, catalog_note: str | None, suggestion: str | None
) -> str:
    model = ctx.model
    if model:
        head = f"Model {model!r} was not found on W&B Inference"
    else:
        head = "W&B Inference answered 404 Not Found"
    parts = [f"{head} {_said(ctx, server, with_model=not model)}"]
    if catalog_note:
        parts.append(catalog_note)
    if suggestion:
        parts.append(f"Model IDs are case-sensitive: did you mean {suggestion!r}?")
    elif model and model.strip().lower().startswith("wandb-artifact:"):
        parts.append(
            "For a LoRA adapter check the artifact path and version "
            "(wandb-artifact:///team/project/name:version) and that the project you send "
            "can read it."
        )
    prefix = "List" if suggestion else "Model IDs are case-sensitive; list"
    parts.append(
        f"{prefix} the available ones with {_LIST_MODELS}, and check that base_url is "
        f"{DEFAULT_BASE_URL}."
    )
    parts.append("Not retried with the same model; fallback_models can serve the request.")
    return " ".join(parts)


def _invalid_message(ctx: _Context, shown: str | None, param: str | None) -> str:
    if param:
        head = f"W&B Inference rejected parameter {param!r} of the request"
        advice = (
            f"Remove or change {param!r}: this model may not support it (some models lack "
            "frequency_penalty, logprobs or response_format) or its value is out of range."
        )
    else:
        head = "W&B Inference rejected the request as invalid"
        advice = (
            "Check the parameters and messages: one is unsupported by this model, out of "
            "range, or malformed."
        )
    return f"{head} {_said(ctx, shown)} {advice} Not retried: the same request would fail again."


def _context_overflow_message(ctx: _Context, shown: str | None) -> str:
    target = f"model {ctx.model!r}" if ctx.model else "the model"
    return (
        f"The request does not fit the context window of {target} "
        f"{_said(ctx, shown, with_model=False)} "
        "Shorten the input (trim or summarize older messages), lower max_tokens, or use "
        "a model with a larger context window. Not retried."
    )


def _concurrency_message(ctx: _Context, server: str | None, retry_after: float | None) -> str:
    wait = f" (the service asked to wait {retry_after:g}s)" if retry_after is not None else ""
    return (
        "W&B Inference concurrency limit reached: too many requests in flight for this "
        f"project/user and model {_said(ctx, server)} Retried automatically with "
        f"exponential backoff{wait}. If it persists, lower max_concurrency (fewer "
        "parallel calls for this project and model), or set fallback_models."
    )


def _server_message(ctx: _Context, server: str | None, *, overloaded: bool) -> str:
    head = (
        "W&B Inference is overloaded (high traffic)"
        if overloaded
        else "W&B Inference had an internal error"
    )
    return (
        f"{head} {_said(ctx, server)} Usually transient: retried automatically with "
        "exponential backoff, and fallback_models can serve the request from another model."
    )


def _where(request: Any, model: str | None) -> str:
    parts = []
    method = getattr(request, "method", None)
    url = _url_without_query(request)
    if method and url:
        parts.append(f"{method} {url}")
    if model:
        parts.append(f"model {model!r}")
    return f" ({', '.join(parts)})" if parts else ""


def _timeout_message(request: Any, model: str | None) -> str:
    return (
        f"W&B Inference did not answer in time{_where(request, model)}. Retried "
        "automatically. Reasoning models can take long before the first token: stream the "
        "response or raise timeout=...; fallback_models can serve the request from another "
        "model."
    )


def _connection_message(request: Any, model: str | None, *, cause: str | None) -> str:
    why = f": {_one_line(cause, limit=300)}" if cause else ""
    return (
        f"Could not reach W&B Inference{_where(request, model)}{why}. Check the network, "
        f"any proxy, and that base_url is {DEFAULT_BASE_URL}. Retried automatically."
    )


def _catalog_hints(model: str | None) -> tuple[str | None, str | None, str | None]:
    """Look ``model`` up in the catalog: (replacement, suggestion, note) for a 404.

    Never raises: a failure here must not hide the error being reported.
    """
    if not model:
        return None, None, None
    try:
        info = model_info(model)
        suggestion = suggest_model_id(model) if info is None else None
    except Exception:
        return None, None, None
    if suggestion == model:
        suggestion = None
    if info is None:
        return None, suggestion, None
    replacement = getattr(info, "replacement", None) or None
    retired_on = getattr(info, "retired_on", None)
    lifecycle = getattr(info, "lifecycle", None)
    stage = str(getattr(lifecycle, "value", lifecycle) or "").lower()
    use = f"; use {replacement!r} instead." if replacement else "."
    if stage == "retired" or (
        isinstance(retired_on, datetime.date) and retired_on <= datetime.date.today()
    ):
        when = f" on {retired_on.isoformat()}" if isinstance(retired_on, datetime.date) else ""
        note = f"{model!r} was retired{when}{use}"
    elif stage == "deprecated":
        note = f"{model!r} is deprecated{use}"
    elif replacement:
        note = f"The catalog names {replacement!r} as its replacement."
    else:
        note = None
    return replacement, suggestion, note


# --------------------------------------------------------------------------------------
# Body, header and request parsing
# --------------------------------------------------------------------------------------


def _parse_body(body: object) -> _ErrorInfo:
    """Read the error out of any of W&B's body shapes.

    ``{"error": {"code", "message", "type"?}}``, the SDK's inner ``{"code", "message"}``,
    ``{"detail": str | [{"loc", "msg", "type"}]}``, ``{"error": "text"}``,
    ``{"message": ...}``, or plain (possibly HTML) text.
    """
    info = _ErrorInfo()
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str):
        text = body.strip()
        if text.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                body = json.loads(text)
    if isinstance(body, Mapping):
        error = body.get("error")
        inner: Mapping[Any, Any] = error if isinstance(error, Mapping) else body
        if isinstance(error, str) and error.strip():
            info.message = error.strip()
        message = inner.get("message")
        if isinstance(message, str) and message.strip():
            info.message = message.strip()
        info.code = _scalar(inner.get("code"))
        info.type = _scalar(inner.get("type"))
        info.param = _scalar(inner.get("param"))
        if "detail" in body:
            info.detail = body["detail"]
        elif "detail" in inner:
            info.detail = inner["detail"]
        if info.message is None and info.detail is not None:
            info.message = _format_detail(info.detail)
    elif isinstance(body, str) and body.strip():
        text = body.strip()
        if text.startswith("<"):
            info.html = True
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            info.message = "HTML page" + (f": {_one_line(title.group(1))}" if title else "")
        else:
            info.message = _one_line(text)
    return info


def _scalar(value: object) -> str | None:
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return None
    return str(value)


def _format_detail(detail: object, *, limit: int = 1000) -> str:
    """FastAPI's ``[{"loc": [...], "msg": ..., "type": ...}]`` as ``loc: msg; ...``."""
    if isinstance(detail, str):
        return _one_line(detail, limit=limit)
    items = detail if isinstance(detail, list) else [detail]
    parts = []
    for item in items:
        if isinstance(item, Mapping):
            loc = _loc_text(item.get("loc"))
            msg = item.get("msg") or item.get("message") or item.get("type") or ""
            parts.append(f"{loc}: {msg}" if loc else str(msg))
        else:
            parts.append(str(item))
    return _one_line("; ".join(p for p in parts if p), limit=limit)


def _loc_text(loc: object) -> str:
    if not isinstance(loc, (list, tuple)):
        return "" if loc is None else str(loc)
    path = [str(p) for p in loc]
    if path and path[0] in ("body", "query", "header"):
        path = path[1:]
    return ".".join(path)


def _param_from_detail(detail: object) -> str | None:
    items = detail if isinstance(detail, list) else [detail]
    for item in items:
        if isinstance(item, Mapping):
            loc = item.get("loc")
            if isinstance(loc, (list, tuple)):
                path = [str(p) for p in loc if not isinstance(p, int)]
                if path and path[0] in ("body", "query", "header"):
                    path = path[1:]
                if path:
                    return path[0]
    return None


def _param_from_text(text: str) -> str | None:
    for name in _KNOWN_PARAMS:
        if re.search(rf"(?<![a-z_]){re.escape(name)}(?![a-z_])", text):
            return name
    return None


def _model_from_message(message: str) -> str | None:
    found = re.search(r"model\s+[`'\"]([^`'\"\s]+)[`'\"]", message, re.IGNORECASE)
    return found.group(1) if found else None


def _strip_sdk_prefix(message: str | None) -> str | None:
    """``"Error code: 503 - text"`` -> ``"text"``; ``"Error code: 503"`` -> ``None``."""
    if not message:
        return None
    stripped = re.sub(r"^Error code: \d+(?: - )?", "", message).strip()
    return stripped or None


def _one_line(text: str, *, limit: int = 500) -> str:
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[: limit - 1] + "…"


def _header(message: Any, name: str) -> str | None:
    headers = getattr(message, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) and value else None


def _request_id(response: Any) -> str | None:
    for name in ("x-request-id", "request-id"):
        value = _header(response, name)
        if value:
            return value
    return None


def _response_request(response: Any) -> Any:
    try:
        return response.request
    except Exception:  # httpx raises RuntimeError when the response has no request
        return None


def _model_from_request(request: Any) -> str | None:
    if request is None:
        return None
    try:
        content = request.content
        payload = json.loads(content) if content else None
    except Exception:
        return None
    model = payload.get("model") if isinstance(payload, Mapping) else None
    return model if isinstance(model, str) and model else None


def _url_without_query(request: Any) -> str | None:
    """The request's URL without query, fragment or user info; ``None`` if unreadable."""
    try:
        url = getattr(request, "url", None)
        if url is None:
            return None
        parts = urllib.parse.urlsplit(str(url))
        netloc = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")) or None
    except Exception:
        return None


def _parse_retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        in_ms = headers.get("retry-after-ms")
        in_s = headers.get("retry-after")
    except Exception:
        return None
    for value, scale in ((in_ms, 1000.0), (in_s, 1.0)):
        if value is None:
            continue
        try:
            number = float(str(value).strip())
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
        now = datetime.datetime.now(datetime.timezone.utc)
        return max(0.0, (when - now).total_seconds())
    return None


# --------------------------------------------------------------------------------------
# Keeping credentials out of errors
# --------------------------------------------------------------------------------------

_REDACTED = "[REDACTED]"
# Their values are secrets, scrubbed from every text the error keeps.
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)
# Replaced by _REDACTED on the stored request/response copies: the credentials, the
# W&B team/project (``OpenAI-Project``; not a secret, so messages may name it, but no
# business of whatever logs the error) and the organization, and cookies set.
_REDACTED_HEADERS = _CREDENTIAL_HEADERS | {"openai-project", "openai-organization", "set-cookie"}
# Only a token-looking word (8+ chars, a digit) after "Bearer", so that W&B's own text
# "Missing bearer authentication in header" survives.
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?=[^\s\"',;]*\d)[A-Za-z0-9._~+/=\-]{8,}")
# Dropped from the response copy: its content is already decoded and re-sized.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
# Kept on a stand-in response (see _stand_in_response).
_STAND_IN_HEADERS = ("x-request-id", "request-id", "retry-after", "retry-after-ms")


class _Sanitized(NamedTuple):
    response: Any
    body: object | None
    message: str
    server_message: str | None
    secrets: tuple[str, ...]


def _sanitize(
    response: Any, body: object | None, message: str, server_message: str | None
) -> _Sanitized:
    """Copy everything an error keeps, without the credentials the request carried.

    The response (and its request) is a redacted copy, or a bare stand-in when it
    cannot be copied: never the original, which carries the API key.
    """
    request = _response_request(response)
    secrets = _secrets_in(request)
    safe_request = _redact_request(request, secrets) if request is not None else None
    if safe_request is None:
        safe_request = _stand_in_request(request, secrets)
    safe_response = _redact_response(response, safe_request, secrets)
    if safe_response is None:
        safe_response = _stand_in_response(response, safe_request, secrets)
    return _Sanitized(
        response=safe_response,
        body=_scrub(body, secrets),
        message=_scrub_text(message, secrets),
        server_message=_scrub_text(server_message, secrets) if server_message else server_message,
        secrets=secrets,
    )


def _secrets_in(request: Any) -> tuple[str, ...]:
    try:
        headers = getattr(request, "headers", None)
        if headers is None:
            return ()
        items = list(headers.items())
    except Exception:
        return ()
    found: set[str] = set()
    for name, value in items:
        if str(name).lower() in _CREDENTIAL_HEADERS and isinstance(value, str):
            value = value.strip()
            found.add(value)
            _scheme, _, token = value.partition(" ")
            found.add(token.strip())
    # Longest first, so a token is not left half-replaced inside "Bearer <token>".
    return tuple(sorted((s for s in found if len(s) >= 8), key=len, reverse=True))


def _scrub_text(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return _BEARER.sub(rf"\1 {_REDACTED}", text)


def _scrub(value: object, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if isinstance(value, Mapping):
        scrubbed = {k: _scrub(v, secrets) for k, v in value.items()}
        return value if scrubbed == value else scrubbed
    if isinstance(value, list):
        items = [_scrub(v, secrets) for v in value]
        return value if items == value else items
    if isinstance(value, tuple):
        return tuple(_scrub(v, secrets) for v in value)
    return value


def _redacted_headers(
    headers: Any, secrets: Sequence[str], *, drop: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """``headers`` as pairs: redacted names replaced, secrets scrubbed, ``drop`` dropped."""
    pairs = []
    for name, value in headers.multi_items():
        lowered = str(name).lower()
        if lowered in drop:
            continue
        pairs.append(
            (name, _REDACTED if lowered in _REDACTED_HEADERS else _scrub_text(value, secrets))
        )
    return pairs


def _is_clean(message: Any, secrets: Sequence[str]) -> bool:
    """Whether a copy's headers really are redacted (a subclass may ignore ``headers=``)."""
    try:
        for name, value in message.headers.multi_items():
            if str(name).lower() in _REDACTED_HEADERS and value != _REDACTED:
                return False
            if any(secret in str(value) for secret in secrets):
                return False
    except Exception:
        return False
    return True


def _redact_request(request: Any, secrets: Sequence[str]) -> Any | None:
    """Copy ``request`` with its headers redacted; ``None`` if it can't be.

    Never returns ``request`` itself: it carries the API key.
    """
    try:
        headers = _redacted_headers(request.headers, secrets)
        try:
            content = request.content
        except Exception:  # a streamed body that was never read
            content = b""
        copy = type(request)(
            request.method,
            request.url,
            headers=headers,
            content=content,
            extensions=getattr(request, "extensions", None),
        )
    except Exception:
        return None
    return copy if copy is not request and _is_clean(copy, secrets) else None


def _redact_response(response: Any, request: Any, secrets: Sequence[str]) -> Any | None:
    """Copy ``response``, attached to the redacted ``request``, with secrets scrubbed.

    ``None`` if it can't be; never ``response`` itself (its request carries the API key).
    """
    try:
        try:
            content = bytes(response.content)
        except Exception:  # closed before it was read
            content = b""
        for secret in secrets:
            content = content.replace(secret.encode(), _REDACTED.encode())
        headers = _redacted_headers(response.headers, secrets, drop=_ENCODING_HEADERS)
        copy = type(response)(
            response.status_code, headers=headers, content=content, request=request
        )
    except Exception:
        return None
    if copy is response or _response_request(copy) is not request:
        return None
    return copy if _is_clean(copy, secrets) else None


def _stand_in_request(request: Any, secrets: Sequence[str]) -> httpx2.Request:
    """A bare request to the same method and URL: no headers, no body, no query."""
    try:
        method = str(request.method)
    except Exception:
        method = ""
    url = _url_without_query(request)
    if url is not None:
        url = _scrub_text(url, secrets)
    try:
        return httpx2.Request(method or "POST", url or DEFAULT_BASE_URL)
    except Exception:  # a method or URL httpx2 rejects
        return httpx2.Request("POST", DEFAULT_BASE_URL)


def _stand_in_response(
    response: Any, request: httpx2.Request, secrets: Sequence[str]
) -> httpx2.Response:
    """A bare response with the same status, request id and Retry-After, and no body."""
    try:
        status = int(response.status_code)
    except Exception:
        status = 500
    headers = [
        (name, _scrub_text(value, secrets))
        for name in _STAND_IN_HEADERS
        if (value := _header(response, name)) is not None
    ]
    try:
        return httpx2.Response(status, headers=headers, request=request)
    except Exception:  # a header value httpx2 rejects
        return httpx2.Response(status, request=request)
