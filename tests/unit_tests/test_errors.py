"""Tests for langchain_wandb_inference.errors: every row of the contract's section 5.

The openai exceptions are real ones, built the way the SDK builds them
(``OpenAI._make_status_error_from_response`` on a real response), so the body reaches
``classify`` in the shape the SDK really gives it (the inner ``error`` object).  No
network: the client is never used to send anything.
"""

from __future__ import annotations

import datetime
import email.utils
import importlib
import json
import time
from types import SimpleNamespace
from typing import Any

import openai
import pytest
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

from langchain_wandb_inference import errors
from langchain_wandb_inference.errors import (
    WBAuthenticationError,
    WBBudgetExceededError,
    WBCircuitOpenError,
    WBConcurrencyLimitError,
    WBConnectionError,
    WBContextOverflowError,
    WBDeadlineExceededError,
    WBInferenceError,
    WBInvalidRequestError,
    WBModelNotFoundError,
    WBOverloadedError,
    WBPermissionDeniedError,
    WBQuotaExceededError,
    WBServerError,
    WBTimeoutError,
    WBUnprocessableEntityError,
    classify,
    retry_after_seconds,
)

# The HTTP library the installed openai SDK is built on (httpx2 for openai 3, httpx for 2).
http: Any = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])

BASE_URL = "https://api.inference.wandb.ai/v1"
URL = f"{BASE_URL}/chat/completions"
SECRET = "sk-secret-0123456789abcdef0123456789abcdef"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
PROJECT = "acme/demo"
REQUEST_ID = "req-7f3a9c"

QUOTA = "You exceeded your current quota, please check your plan and billing details"
CONCURRENCY = "Concurrency limit reached for requests"
CONCURRENCY_LIVE = f"concurrency limit reached for requests: {MODEL}-project limit reached"
PERSONAL = "W&B Inference isn't available for personal accounts."
REGION = "Country, region, or territory not supported"
GATEWAY = "The inference gateway is not enabled for your organization"
NOT_FOUND = "The requested resource was not found"
SERVER = "The server had an error while processing your request"
OVERLOADED = "The engine is currently overloaded, please try again later"
MISSING_BEARER = "Missing bearer authentication in header"

_CLIENT = openai.OpenAI(api_key=SECRET, base_url=BASE_URL, max_retries=0)


def make_request(
    *, model: str | None = MODEL, project: str | None = PROJECT, api_key: str = SECRET
) -> Any:
    headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "test"}
    if project is not None:
        headers["OpenAI-Project"] = project
    payload = {"messages": [{"role": "user", "content": "hi"}]}
    if model is not None:
        payload["model"] = model
    return http.Request("POST", URL, headers=headers, json=payload)


def make_response(
    status: int,
    body: object,
    *,
    headers: dict[str, str] | None = None,
    request: Any = None,
    model: str | None = MODEL,
) -> Any:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return http.Response(
        status,
        headers={"x-request-id": REQUEST_ID, "content-type": "application/json", **(headers or {})},
        content=content,
        request=request if request is not None else make_request(model=model),
    )


def sdk_error(status: int, body: object, **kwargs: Any) -> openai.APIStatusError:
    """The exception the openai SDK raises for this response, built by the SDK itself."""
    return _CLIENT._make_status_error_from_response(make_response(status, body, **kwargs))


def wb_body(code: int | str, message: str, **extra: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


# ---------------------------------------------------------------------------------------
# Section 5, row by row
# ---------------------------------------------------------------------------------------

# What each class of the contract also is: its openai parent, its LangChain parent, and
# LangChain's is_retryable.
PARENTS: dict[type[WBInferenceError], tuple[type[BaseException], type[BaseException], bool]] = {
    WBAuthenticationError: (openai.AuthenticationError, ModelAuthenticationError, False),
    WBQuotaExceededError: (openai.APIStatusError, ModelError, False),
    WBPermissionDeniedError: (openai.PermissionDeniedError, ModelPermissionDeniedError, False),
    WBModelNotFoundError: (openai.NotFoundError, ModelNotFoundError, False),
    WBUnprocessableEntityError: (openai.UnprocessableEntityError, ModelInvalidRequestError, False),
    WBConcurrencyLimitError: (openai.RateLimitError, ModelRateLimitError, True),
    WBServerError: (openai.InternalServerError, ModelAPIError, True),
    WBOverloadedError: (openai.InternalServerError, ModelAPIError, True),
}

# (status, body, class, phrases the message must contain), one row of section 5 each.
ROWS = [
    pytest.param(
        401,
        wb_body(401, "Invalid Authentication"),
        WBAuthenticationError,
        ["WANDB_API_KEY", "https://wandb.ai/authorize", repr(PROJECT), "OpenAI-Project"],
        id="401-invalid-authentication-2025",
    ),
    pytest.param(
        401,
        wb_body(401, "Authentication failed"),
        WBAuthenticationError,
        ["WANDB_API_KEY", "https://wandb.ai/authorize", "member", "project="],
        id="401-authentication-failed-2026",
    ),
    pytest.param(
        401,
        wb_body("invalid_api_key", MISSING_BEARER, type="invalid_request_error"),
        WBAuthenticationError,
        ["no API key", "WANDB_API_KEY", "https://wandb.ai/authorize"],
        id="401-missing-bearer-observed",
    ),
    pytest.param(
        402,
        wb_body(402, QUOTA),
        WBQuotaExceededError,
        ["Buy credits", "spend limit", "Billing page", "Not retried"],
        id="402-quota",
    ),
    pytest.param(
        403,
        wb_body(403, REGION),
        WBPermissionDeniedError,
        ["not available from your country, region, or territory", "Not retried"],
        id="403-region",
    ),
    pytest.param(
        403,
        wb_body(403, GATEWAY),
        WBPermissionDeniedError,
        ["organization admin must enable W&B Inference"],
        id="403-gateway",
    ),
    pytest.param(
        404,
        wb_body(404, NOT_FOUND),
        WBModelNotFoundError,
        ["case-sensitive", "ChatWBInference.list_models()", "wb-inference models", BASE_URL],
        id="404-resource-not-found",
    ),
    pytest.param(
        404,
        wb_body(404, "The model `acme/NoSuchModel` does not exist"),
        WBModelNotFoundError,
        ["case-sensitive", "list_models()", "fallback_models"],
        id="404-model-does-not-exist",
    ),
    pytest.param(
        422,
        {
            "detail": [
                {
                    "loc": ["body", "frequency_penalty"],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
            ]
        },
        WBUnprocessableEntityError,
        ["'frequency_penalty'", "Extra inputs are not permitted", "Remove or change"],
        id="422-detail-list",
    ),
    pytest.param(
        422,
        {"detail": "Unsupported parameter: logprobs"},
        WBUnprocessableEntityError,
        ["'logprobs'", "Unsupported parameter: logprobs"],
        id="422-detail-string",
    ),
    pytest.param(
        429,
        wb_body(429, CONCURRENCY),
        WBConcurrencyLimitError,
        ["in flight", "max_concurrency", "Retried automatically", "backoff"],
        id="429-concurrency-documented",
    ),
    pytest.param(
        429,
        wb_body("rate_limit_exceeded", CONCURRENCY_LIVE),
        WBConcurrencyLimitError,
        ["in flight", "max_concurrency", "Retried automatically"],
        id="429-concurrency-live",
    ),
    pytest.param(
        429,
        wb_body(429, QUOTA),
        WBQuotaExceededError,
        ["Buy credits", "not a rate limit", "Not retried"],
        id="429-quota-2025",
    ),
    pytest.param(
        429,
        wb_body(429, PERSONAL),
        WBPermissionDeniedError,
        ["project='team/project'", "team"],
        id="429-personal-account-2025",
    ),
    pytest.param(
        500,
        wb_body(500, SERVER),
        WBServerError,
        ["transient", "retried automatically", "fallback_models"],
        id="500-server-error",
    ),
    pytest.param(
        503,
        wb_body(503, OVERLOADED),
        WBOverloadedError,
        ["overloaded", "retried automatically", "fallback_models"],
        id="503-overloaded",
    ),
]


@pytest.mark.parametrize(("status", "body", "cls", "advice"), ROWS)
def test_contract_row(
    status: int, body: dict[str, Any], cls: type[WBInferenceError], advice: list[str]
) -> None:
    openai_parent, langchain_parent, retryable = PARENTS[cls]
    original = sdk_error(status, body)
    mapped = classify(original, model=MODEL)

    assert type(mapped) is cls
    assert isinstance(mapped, WBInferenceError)
    assert isinstance(mapped, openai_parent)
    assert isinstance(mapped, openai.APIStatusError)
    assert isinstance(mapped, langchain_parent)
    assert isinstance(mapped, ModelError)
    assert mapped.is_retryable is retryable
    assert mapped.status_code == status
    assert mapped.request_id == REQUEST_ID
    assert mapped.model == MODEL
    assert mapped.history == []
    text = str(mapped)
    assert f"HTTP {status}" in text
    assert REQUEST_ID in text
    for phrase in advice:
        assert phrase in text, f"{phrase!r} missing from: {text}"
    # The server's own words are kept verbatim, in the message and as server_message.
    expected = body["error"]["message"] if "error" in body else None
    if expected is not None:
        assert expected in text
        assert mapped.server_message == expected
    # The SDK already unwrapped {"error": {...}}; the body is kept as the SDK gave it.
    assert mapped.body == original.body
    assert mapped.args == (mapped.message,)


def test_quota_is_deliberately_not_a_rate_limit() -> None:
    for status in (402, 429):
        mapped = classify(sdk_error(status, wb_body(status, QUOTA)))
        assert isinstance(mapped, WBQuotaExceededError)
        assert not isinstance(mapped, openai.RateLimitError)
        assert not isinstance(mapped, ModelRateLimitError)
        assert mapped.is_retryable is False


def test_429_is_classified_by_message_not_status() -> None:
    kinds = {
        message: type(classify(sdk_error(429, wb_body(429, message))))
        for message in (QUOTA, CONCURRENCY, CONCURRENCY_LIVE, PERSONAL, "slow down, please")
    }
    assert kinds == {
        QUOTA: WBQuotaExceededError,
        CONCURRENCY: WBConcurrencyLimitError,
        CONCURRENCY_LIVE: WBConcurrencyLimitError,
        PERSONAL: WBPermissionDeniedError,
        # An unknown 429 text gets the documented meaning of a 429.
        "slow down, please": WBConcurrencyLimitError,
    }


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (REGION, "region"),
        (GATEWAY, "gateway"),
        ("Forbidden", "unknown"),
    ],
)
def test_403_reason(message: str, reason: str) -> None:
    mapped = classify(sdk_error(403, wb_body(403, message)))
    assert isinstance(mapped, WBPermissionDeniedError)
    assert mapped.reason == reason


def test_429_personal_account_reason() -> None:
    mapped = classify(sdk_error(429, wb_body(429, PERSONAL)))
    assert isinstance(mapped, WBPermissionDeniedError)
    assert mapped.reason == "personal_account"
    assert mapped.status_code == 429


def test_403_html_page_points_at_proxy_or_cdn() -> None:
    html = "<html><head><title>403 Forbidden</title></head><body>blocked</body></html>"
    mapped = classify(sdk_error(403, html, headers={"content-type": "text/html"}))
    assert isinstance(mapped, WBPermissionDeniedError)
    assert mapped.reason == "unknown"
    assert "proxy or CDN" in str(mapped)
    assert "403 Forbidden" in str(mapped)


def test_401_without_project_says_default_project_is_used() -> None:
    response = make_response(
        401, wb_body(401, "Authentication failed"), request=make_request(project=None)
    )
    mapped = classify(_CLIENT._make_status_error_from_response(response))
    assert "none was sent" in str(mapped)
    assert "'inference'" in str(mapped)


def test_401_missing_bearer_text_survives_redaction() -> None:
    mapped = classify(sdk_error(401, wb_body("invalid_api_key", MISSING_BEARER)))
    assert isinstance(mapped, WBAuthenticationError)
    assert MISSING_BEARER in str(mapped)
    assert mapped.code == "invalid_api_key"


# ---------------------------------------------------------------------------------------
# Body shapes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(wb_body(429, QUOTA), id="outer-error-object"),
        pytest.param({"code": 429, "message": QUOTA}, id="inner-error-object"),
        pytest.param({"error": QUOTA}, id="error-string"),
        pytest.param({"message": QUOTA}, id="top-level-message"),
        pytest.param({"detail": QUOTA}, id="detail-string"),
        pytest.param(QUOTA, id="plain-text"),
        pytest.param(json.dumps(wb_body(429, QUOTA)), id="undecoded-json-text"),
    ],
)
def test_every_body_shape_is_read(body: object) -> None:
    response = make_response(429, {"unused": True})
    original = openai.RateLimitError("Error code: 429", response=response, body=body)
    mapped = classify(original)
    assert isinstance(mapped, WBQuotaExceededError)
    assert mapped.server_message == QUOTA


def test_no_body_falls_back_on_status() -> None:
    response = make_response(503, "")
    mapped = classify(openai.InternalServerError("Error code: 503", response=response, body=None))
    assert isinstance(mapped, WBOverloadedError)
    assert "no error message in the response" in str(mapped)
    assert mapped.server_message is None


def test_openai_2_style_message_prefix_is_stripped() -> None:
    response = make_response(401, {"unused": True})
    original = openai.AuthenticationError(
        "Error code: 401 - Authentication failed", response=response, body=None
    )
    mapped = classify(original)
    assert isinstance(mapped, WBAuthenticationError)
    assert mapped.server_message == "Authentication failed"
    assert "Error code" not in str(mapped)


# ---------------------------------------------------------------------------------------
# 400 / 422 / context overflow
# ---------------------------------------------------------------------------------------


def test_one_class_catches_400_and_422() -> None:
    bad = classify(sdk_error(400, wb_body(400, "temperature must be between 0 and 2")))
    unprocessable = classify(
        sdk_error(422, {"detail": [{"loc": ["body", "top_p"], "msg": "bad", "type": "x"}]})
    )
    for mapped in (bad, unprocessable):
        assert isinstance(mapped, WBInvalidRequestError)
        assert isinstance(mapped, openai.BadRequestError)
        assert isinstance(mapped, ModelInvalidRequestError)
        assert mapped.is_retryable is False
    assert type(bad) is WBInvalidRequestError
    assert not isinstance(bad, openai.UnprocessableEntityError)
    assert isinstance(unprocessable, openai.UnprocessableEntityError)
    assert unprocessable.status_code == 422
    assert bad.status_code == 400
    assert bad.param == "temperature"
    assert unprocessable.param == "top_p"


def test_422_detail_is_kept_and_shown() -> None:
    detail = [
        {
            "loc": ["body", "temperature"],
            "msg": "Input should be less than or equal to 2",
            "type": "less_than_equal",
            "input": 7,
        },
        {"loc": ["body", "messages", 0, "role"], "msg": "Field required", "type": "missing"},
    ]
    mapped = classify(sdk_error(422, {"detail": detail}))
    assert isinstance(mapped, WBUnprocessableEntityError)
    assert mapped.detail == detail
    assert mapped.param == "temperature"
    text = str(mapped)
    assert "temperature: Input should be less than or equal to 2" in text
    assert "messages.0.role: Field required" in text


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            400,
            "This model's maximum context length is 131072 tokens. However, you requested "
            "140000 tokens (139000 in the messages, 1000 in the completion).",
        ),
        (
            400,
            "The decoder prompt (length 300000) is longer than the maximum model length of 262144.",
        ),
        (422, "context_length_exceeded"),
    ],
)
def test_context_overflow(status: int, message: str) -> None:
    mapped = classify(sdk_error(status, wb_body(status, message)), model=MODEL)
    assert isinstance(mapped, WBContextOverflowError)
    assert isinstance(mapped, ContextOverflowError)
    assert isinstance(mapped, WBInvalidRequestError)
    assert isinstance(mapped, openai.BadRequestError)
    assert mapped.is_retryable is False
    assert "context window" in str(mapped)
    assert "Shorten the input" in str(mapped)


def test_langchain_openai_wrapped_errors_are_classified() -> None:
    lco = pytest.importorskip("langchain_openai.chat_models.base")
    for status, body, expected in (
        (429, wb_body("rate_limit_exceeded", CONCURRENCY_LIVE), WBConcurrencyLimitError),
        (429, wb_body(429, QUOTA), WBQuotaExceededError),
        (400, wb_body(400, "prompt is too long"), WBContextOverflowError),
        (503, wb_body(503, OVERLOADED), WBOverloadedError),
    ):
        original = sdk_error(status, body)
        handler = (
            lco._handle_openai_bad_request
            if isinstance(original, openai.BadRequestError)
            else lco._handle_openai_api_error
        )
        with pytest.raises(openai.APIStatusError) as caught:
            handler(original)
        assert type(caught.value).__module__ == lco.__name__
        assert type(classify(caught.value)) is expected


# ---------------------------------------------------------------------------------------
# 5xx
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (500, SERVER, WBServerError),
        (502, "Bad Gateway", WBServerError),
        (504, "Gateway Timeout", WBServerError),
        (503, "Service Unavailable", WBOverloadedError),
        (500, OVERLOADED, WBOverloadedError),
    ],
)
def test_5xx(status: int, message: str, expected: type[WBInferenceError]) -> None:
    mapped = classify(sdk_error(status, wb_body(status, message)))
    assert type(mapped) is expected
    assert isinstance(mapped, openai.InternalServerError)
    assert mapped.is_retryable is True


# ---------------------------------------------------------------------------------------
# 404 and the model catalog
# ---------------------------------------------------------------------------------------


def test_404_names_a_retired_models_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    retired = SimpleNamespace(
        replacement="Qwen/Qwen3.5-35B-A3B",
        retired_on=datetime.date(2026, 4, 21),
        lifecycle=SimpleNamespace(value="retired"),
    )
    monkeypatch.setattr(errors, "model_info", lambda model_id: retired)
    monkeypatch.setattr(errors, "suggest_model_id", lambda model_id: None)
    mapped = classify(sdk_error(404, wb_body(404, NOT_FOUND)), model="old/Model")
    assert isinstance(mapped, WBModelNotFoundError)
    assert mapped.replacement == "Qwen/Qwen3.5-35B-A3B"
    assert mapped.suggestion is None
    assert "'old/Model' was retired on 2026-04-21; use 'Qwen/Qwen3.5-35B-A3B' instead." in str(
        mapped
    )


def test_404_deprecated_model(monkeypatch: pytest.MonkeyPatch) -> None:
    deprecated = SimpleNamespace(
        replacement="new/Model", retired_on=None, lifecycle=SimpleNamespace(value="deprecated")
    )
    monkeypatch.setattr(errors, "model_info", lambda model_id: deprecated)
    mapped = classify(sdk_error(404, wb_body(404, NOT_FOUND)), model="old/Model")
    assert "'old/Model' is deprecated; use 'new/Model' instead." in str(mapped)


def test_404_suggests_the_correct_casing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "model_info", lambda model_id: None)
    monkeypatch.setattr(errors, "suggest_model_id", lambda model_id: MODEL)
    wrong = "META-LLAMA/llama-3.1-8b-instruct"
    mapped = classify(sdk_error(404, wb_body(404, NOT_FOUND), model=wrong))
    assert isinstance(mapped, WBModelNotFoundError)
    assert mapped.model == wrong  # read from the request body
    assert mapped.suggestion == MODEL
    assert f"did you mean {MODEL!r}?" in str(mapped)


def test_404_catalog_failure_does_not_hide_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model_id: str) -> None:
        raise RuntimeError("catalog exploded")

    monkeypatch.setattr(errors, "model_info", broken)
    mapped = classify(sdk_error(404, wb_body(404, NOT_FOUND)))
    assert isinstance(mapped, WBModelNotFoundError)
    assert mapped.replacement is None
    assert "catalog exploded" not in str(mapped)


def test_404_with_the_real_catalog() -> None:
    scout = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    mapped = classify(sdk_error(404, wb_body(404, NOT_FOUND), model=scout))
    assert isinstance(mapped, WBModelNotFoundError)
    assert mapped.replacement == "Qwen/Qwen3.5-35B-A3B"
    assert "was retired on 2026-04-21; use 'Qwen/Qwen3.5-35B-A3B' instead." in str(mapped)

    case_slip = classify(sdk_error(404, wb_body(404, NOT_FOUND), model=MODEL.lower()))
    assert isinstance(case_slip, WBModelNotFoundError)
    assert case_slip.suggestion == MODEL


def test_404_model_from_message_when_the_request_has_no_body() -> None:
    request = http.Request("GET", f"{BASE_URL}/models/x", headers={"Authorization": "Bearer k"})
    response = make_response(
        404, wb_body(404, "The model `acme/Gone` does not exist"), request=request
    )
    mapped = classify(_CLIENT._make_status_error_from_response(response))
    assert isinstance(mapped, WBModelNotFoundError)
    assert mapped.model == "acme/Gone"


def test_404_lora_artifact_advice() -> None:
    artifact = "wandb-artifact:///acme/demo/my-lora:latest"
    mapped = classify(sdk_error(404, wb_body(404, NOT_FOUND), model=artifact))
    assert "artifact path and version" in str(mapped)


# ---------------------------------------------------------------------------------------
# Timeouts, connection errors, pass-through
# ---------------------------------------------------------------------------------------


def test_timeout() -> None:
    original = openai.APITimeoutError(make_request())
    mapped = classify(original)
    assert type(mapped) is WBTimeoutError
    assert isinstance(mapped, openai.APITimeoutError)
    assert isinstance(mapped, openai.APIConnectionError)
    assert isinstance(mapped, ModelTimeoutError)
    assert mapped.is_retryable is True
    assert mapped.status_code is None
    assert mapped.model == MODEL  # read from the request body
    assert "did not answer in time" in str(mapped)
    assert "timeout=" in str(mapped)
    assert URL in str(mapped)


def test_connection_error_names_the_cause() -> None:
    request = make_request()
    original = openai.APIConnectionError(request=request)
    original.__cause__ = http.ConnectError("[Errno 111] Connection refused")
    mapped = classify(original, model="m/x")
    assert type(mapped) is WBConnectionError
    assert isinstance(mapped, openai.APIConnectionError)
    assert not isinstance(mapped, openai.APITimeoutError)
    assert isinstance(mapped, ModelConnectionError)
    assert mapped.is_retryable is True
    assert mapped.model == "m/x"
    assert "Connection refused" in str(mapped)
    assert "proxy" in str(mapped)


def test_direct_construction_as_the_other_policies_do() -> None:
    # concurrency.py builds a timeout from a bare request (httpx, whatever openai uses).
    import httpx

    for request in (httpx.Request("POST", URL), http.Request("POST", URL)):
        timeout = WBTimeoutError(request=request)
        assert timeout.is_retryable is True
        assert "did not answer in time" in str(timeout)
    circuit = WBCircuitOpenError(model=MODEL, base_url=BASE_URL, retry_in=12.5)
    assert isinstance(circuit, ModelError)
    assert not isinstance(circuit, openai.OpenAIError)
    assert circuit.is_retryable is False
    assert (circuit.model, circuit.base_url, circuit.retry_in) == (MODEL, BASE_URL, 12.5)
    assert retry_after_seconds(circuit) == 12.5
    assert "12.5s" in str(circuit)
    assert "fallback_models" in str(circuit)
    budget = WBBudgetExceededError(spent_usd=4.99, budget_usd=5.0)
    assert isinstance(budget, ModelError)
    assert not isinstance(budget, openai.OpenAIError)
    assert budget.is_retryable is False
    assert (budget.spent_usd, budget.budget_usd) == (4.99, 5.0)
    assert "$4.9900 of the $5.00 budget" in str(budget)
    assert "no request was sent" in str(budget)


def test_status_classes_can_be_built_directly() -> None:
    response = make_response(429, wb_body(429, CONCURRENCY), headers={"retry-after": "3"})
    exc = WBConcurrencyLimitError("too busy", response=response, body=None, model=MODEL)
    assert str(exc) == "too busy"
    assert exc.retry_after == 3.0
    assert exc.request_id == REQUEST_ID
    assert exc.status_code == 429


def test_already_classified_and_unrelated_errors_pass_through() -> None:
    mapped = classify(sdk_error(503, wb_body(503, OVERLOADED)))
    assert classify(mapped) is mapped
    for other in (
        ValueError("nope"),
        KeyboardInterrupt(),
        openai.OpenAIError("generic"),
        openai.APIError("stream error", make_request(), body=None),
        sdk_error(405, wb_body(405, "Method Not Allowed")),
        sdk_error(409, wb_body(409, "Conflict")),
    ):
        assert classify(other) is other


def test_raise_from_keeps_the_original_as_cause() -> None:
    original = sdk_error(503, wb_body(503, OVERLOADED))
    with pytest.raises(WBOverloadedError) as caught:
        try:
            raise original
        except openai.OpenAIError as exc:
            raise classify(exc) from exc
    assert caught.value.__cause__ is original
    # Code written against the plain SDK keeps catching it.
    with pytest.raises(openai.InternalServerError):
        raise caught.value


# ---------------------------------------------------------------------------------------
# is_retryable across the hierarchy
# ---------------------------------------------------------------------------------------


def test_is_retryable_per_class() -> None:
    expected = {
        WBAuthenticationError: False,
        WBQuotaExceededError: False,
        WBPermissionDeniedError: False,
        WBModelNotFoundError: False,
        WBInvalidRequestError: False,
        WBUnprocessableEntityError: False,
        WBContextOverflowError: False,
        WBConcurrencyLimitError: True,
        WBServerError: True,
        WBOverloadedError: True,
        WBTimeoutError: True,
        WBDeadlineExceededError: False,
        WBConnectionError: True,
        WBCircuitOpenError: False,
        WBBudgetExceededError: False,
    }
    assert {cls: cls.is_retryable for cls in expected} == expected
    # The mixin base must not define it, or it would shadow the LangChain parents' value.
    assert "is_retryable" not in vars(WBInferenceError)
    assert set(expected) == {
        getattr(errors, name)
        for name in errors.__all__
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), WBInferenceError)
        and getattr(errors, name) is not WBInferenceError
    }


# ---------------------------------------------------------------------------------------
# Retry-After
# ---------------------------------------------------------------------------------------


def _concurrency_with(headers: dict[str, str]) -> BaseException:
    return sdk_error(429, wb_body(429, CONCURRENCY), headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "0"}, 0.0),
        ({}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    original = _concurrency_with(headers)
    assert retry_after_seconds(original) == expected
    mapped = classify(original)
    assert retry_after_seconds(mapped) == expected
    assert isinstance(mapped, WBInferenceError)
    assert mapped.retry_after == expected


def test_retry_after_http_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    seconds = retry_after_seconds(_concurrency_with({"retry-after": when}))
    assert seconds is not None
    assert 100 < seconds <= 121


def test_retry_after_is_mentioned_in_the_concurrency_message() -> None:
    mapped = classify(_concurrency_with({"retry-after": "4"}))
    assert "asked to wait 4s" in str(mapped)


def test_retry_after_without_a_response() -> None:
    assert retry_after_seconds(ValueError("x")) is None
    assert retry_after_seconds(openai.APITimeoutError(make_request())) is None
    assert retry_after_seconds(WBBudgetExceededError(spent_usd=1, budget_usd=1)) is None


# ---------------------------------------------------------------------------------------
# Credentials never leak
# ---------------------------------------------------------------------------------------


def _leaks(exc: BaseException) -> list[str]:
    """Every place of a classified error a secret could be read from."""
    places = {
        "str": str(exc),
        "repr": repr(exc),
        "args": repr(exc.args),
        "vars": repr({k: v for k, v in vars(exc).items() if k not in ("request", "response")}),
    }
    request = getattr(exc, "request", None)
    if request is not None:
        places["request.headers"] = repr(list(request.headers.multi_items()))
    response = getattr(exc, "response", None)
    if response is not None:
        places["response.text"] = response.text
        places["response.request.headers"] = repr(list(response.request.headers.multi_items()))
    return [name for name, text in places.items() if "sk-secret" in text]


@pytest.mark.parametrize("status", [401, 402, 403, 404, 422, 429, 500, 503])
def test_secrets_never_leak_from_status_errors(status: int) -> None:
    # The server even echoes the header back: it must be scrubbed too.
    echoed = f"Authorization: Bearer {SECRET} is not valid"
    body = (
        {"detail": [{"loc": ["body", "seed"], "msg": echoed, "type": "x"}]}
        if status == 422
        else wb_body(status, echoed)
    )
    original = sdk_error(status, body)
    # The test data really carries the secret (so this test can fail) ...
    assert original.request.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET in original.response.text
    mapped = classify(original, model=MODEL)
    assert isinstance(mapped, WBInferenceError)
    # ... and the classified error carries it nowhere.
    assert _leaks(mapped) == []
    assert mapped.request.headers["authorization"] == "[REDACTED]"
    # The caller's objects are not modified.
    assert original.request.headers["authorization"] == f"Bearer {SECRET}"


def test_secrets_never_leak_from_timeouts_and_connection_errors() -> None:
    timeout = classify(openai.APITimeoutError(make_request()))
    assert _leaks(timeout) == []
    failure = openai.APIConnectionError(request=make_request())
    failure.__cause__ = http.ConnectError(f"proxy said: Bearer {SECRET}")
    connection = classify(failure)
    assert isinstance(connection, WBConnectionError)
    assert _leaks(connection) == []
    assert "proxy said" in str(connection)


def test_secrets_never_leak_from_direct_construction() -> None:
    response = make_response(500, wb_body(500, SERVER))
    exc = WBServerError(f"failed with key {SECRET}", response=response, body={"k": SECRET})
    assert _leaks(exc) == []
    assert exc.body == {"k": "[REDACTED]"}


def test_history_is_listed_in_str() -> None:
    from langchain_wandb_inference.pipeline import Attempt

    exc = classify(sdk_error(503, wb_body(503, OVERLOADED)), model="b/model")
    assert isinstance(exc, WBInferenceError)
    message = exc.message
    exc.history = [
        Attempt("a/model", "W&B Inference is overloaded ...", "WBOverloadedError"),
        Attempt("b/model", str(exc), "WBOverloadedError"),
    ]
    text = str(exc)
    assert text.startswith(message)
    assert "Models tried, in order:" in text
    assert "  - a/model: WBOverloadedError: W&B Inference is overloaded ..." in text
    assert "  - b/model: WBOverloadedError:" in text
    assert exc.message == message
    assert exc.args == (message,)


def test_history_defaults_to_a_fresh_list() -> None:
    first = classify(sdk_error(500, wb_body(500, SERVER)))
    second = classify(sdk_error(500, wb_body(500, SERVER)))
    assert isinstance(first, WBInferenceError)
    assert isinstance(second, WBInferenceError)
    first.history.append("x")  # type: ignore[arg-type]
    assert second.history == []
    assert WBCircuitOpenError(model="m", base_url=BASE_URL, retry_in=1).history == []


# ---------------------------------------------------------------------------------------
# The team/project header is redacted on the stored copies (but named in messages)
# ---------------------------------------------------------------------------------------


def _raw_headers(message: Any) -> str:
    """Every header as sent, original case included."""
    return repr(list(message.headers.raw))


@pytest.mark.parametrize("status", [401, 403, 429, 500])
def test_project_header_is_redacted_on_the_stored_copies(status: int) -> None:
    original = sdk_error(status, wb_body(status, "nope"), headers={"OpenAI-Project": PROJECT})
    # The test data really carries the project, in the request and echoed in the response.
    assert original.request.headers["OpenAI-Project"] == PROJECT
    assert original.response.headers["openai-project"] == PROJECT
    mapped = classify(original, model=MODEL)
    assert isinstance(mapped, WBInferenceError)
    assert mapped.request.headers["openai-project"] == "[REDACTED]"
    assert mapped.response.request.headers["OpenAI-Project"] == "[REDACTED]"
    assert mapped.response.headers["openai-project"] == "[REDACTED]"
    for message in (mapped.request, mapped.response.request, mapped.response):
        assert PROJECT not in _raw_headers(message)
    # The other headers are kept, and the caller's objects are not modified.
    assert mapped.request.headers["user-agent"] == "test"
    assert original.request.headers["OpenAI-Project"] == PROJECT


def test_project_header_is_redacted_whatever_its_case() -> None:
    request = http.Request(
        "POST", URL, headers={"Authorization": f"Bearer {SECRET}", "OPENAI-project": PROJECT}
    )
    for mapped in (
        classify(openai.APITimeoutError(request)),
        classify(sdk_error(500, wb_body(500, SERVER), request=request)),
    ):
        assert isinstance(mapped, WBInferenceError)
        assert PROJECT not in _raw_headers(mapped.request)
        assert mapped.request.headers["openai-project"] == "[REDACTED]"


def test_401_still_names_the_project_in_its_advice() -> None:
    # Decided: the project is not a secret, and naming it is what makes a 401 actionable.
    mapped = classify(sdk_error(401, wb_body(401, "Authentication failed")))
    assert isinstance(mapped, WBAuthenticationError)
    assert f"team/project {PROJECT!r}" in str(mapped)
    assert mapped.request.headers["openai-project"] == "[REDACTED]"
    assert _leaks(mapped) == []


# ---------------------------------------------------------------------------------------
# An object that cannot be copied is never kept as is
# ---------------------------------------------------------------------------------------


class _UncopyableRequest(http.Request):  # type: ignore[misc,name-defined]
    """A request whose constructor fails, so it cannot be copied (built by ``__class__``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot copy this request")


class _UncopyableResponse(http.Response):  # type: ignore[misc,name-defined]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot copy this response")


class _StickyAuthRequest(http.Request):  # type: ignore[misc,name-defined]
    """A "copy" that ignores ``headers=`` and keeps sending the key."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs["headers"] = {"Authorization": f"Bearer {SECRET}", "OpenAI-Project": PROJECT}
        super().__init__(method, url, **kwargs)


def _uncopyable_request() -> Any:
    request = make_request()
    request.__class__ = _UncopyableRequest
    return request


def _assert_safe_stand_in(exc: BaseException, original_request: Any) -> None:
    assert isinstance(exc, WBInferenceError)
    assert exc.request is not original_request  # type: ignore[attr-defined]
    assert _leaks(exc) == []
    assert PROJECT not in _raw_headers(exc.request)  # type: ignore[attr-defined]
    assert SECRET not in repr(vars(exc.request))  # type: ignore[attr-defined]
    # Still says where the request went.
    assert str(exc.request.url) == URL  # type: ignore[attr-defined]
    assert exc.request.method == "POST"  # type: ignore[attr-defined]


def test_uncopyable_request_is_never_kept_by_status_errors() -> None:
    request = _uncopyable_request()
    original = sdk_error(
        429, wb_body(429, CONCURRENCY), request=request, headers={"retry-after": "2"}
    )
    assert original.request.headers["authorization"] == f"Bearer {SECRET}"
    mapped = classify(original, model=MODEL)
    assert type(mapped) is WBConcurrencyLimitError
    _assert_safe_stand_in(mapped, request)
    assert mapped.response.request is mapped.request
    assert mapped.response.status_code == 429
    assert mapped.request_id == REQUEST_ID
    assert mapped.retry_after == 2.0


def test_uncopyable_request_is_never_kept_by_timeouts_and_connection_errors() -> None:
    request = _uncopyable_request()
    timeout = classify(openai.APITimeoutError(request))
    assert type(timeout) is WBTimeoutError
    _assert_safe_stand_in(timeout, request)
    direct = WBConnectionError(request=request, model=MODEL)
    _assert_safe_stand_in(direct, request)


def test_request_like_object_without_httpx_headers_is_never_kept() -> None:
    # Not an httpx request at all: its headers are a plain dict, so it cannot be copied.
    request = SimpleNamespace(
        method="POST",
        url=f"{URL}?key={SECRET}",
        headers={"Authorization": f"Bearer {SECRET}", "OpenAI-Project": PROJECT},
    )
    timeout = WBTimeoutError(request)  # type: ignore[arg-type]
    _assert_safe_stand_in(timeout, request)
    assert SECRET not in str(timeout)


def test_copy_that_ignores_the_redacted_headers_is_rejected() -> None:
    request = _StickyAuthRequest("POST", URL, json={"model": MODEL})
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    _assert_safe_stand_in(WBTimeoutError(request), request)
    mapped = classify(sdk_error(500, wb_body(500, SERVER), request=request))
    _assert_safe_stand_in(mapped, request)


def test_uncopyable_response_is_never_kept() -> None:
    response = make_response(
        503, wb_body(503, OVERLOADED), headers={"retry-after-ms": "1500", "OpenAI-Project": PROJECT}
    )
    response.__class__ = _UncopyableResponse
    original = _CLIENT._make_status_error_from_response(response)
    mapped = classify(original, model=MODEL)
    assert type(mapped) is WBOverloadedError
    assert mapped.response is not response
    assert mapped.response.status_code == 503
    assert mapped.response.request is mapped.request
    assert mapped.request.headers["authorization"] == "[REDACTED]"
    assert _leaks(mapped) == []
    assert PROJECT not in _raw_headers(mapped.response)
    assert (mapped.request_id, mapped.retry_after) == (REQUEST_ID, 1.5)
    assert mapped.response.headers["x-request-id"] == REQUEST_ID


# ---------------------------------------------------------------------------------------
# Retry-After is parsed once
# ---------------------------------------------------------------------------------------


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    parse = errors._parse_retry_after

    def counting(headers: Any) -> float | None:
        calls.append(headers)
        return parse(headers)

    monkeypatch.setattr(errors, "_parse_retry_after", counting)
    return calls


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, wb_body(429, CONCURRENCY)), (429, wb_body(429, QUOTA)), (503, wb_body(503, OVERLOADED))],
)
def test_retry_after_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, status: int, body: dict[str, Any]
) -> None:
    original = sdk_error(status, body, headers={"retry-after": "7"})
    calls = _count_parses(monkeypatch)
    mapped = classify(original)
    assert isinstance(mapped, WBInferenceError)
    assert retry_after_seconds(mapped) == 7.0
    assert retry_after_seconds(mapped) == 7.0
    assert mapped.retry_after == 7.0
    assert len(calls) == 1


def test_retry_after_seconds_returns_the_stored_value(monkeypatch: pytest.MonkeyPatch) -> None:
    mapped = classify(_concurrency_with({"retry-after": "7"}))
    assert isinstance(mapped, WBInferenceError)
    mapped.retry_after = 3.0
    calls = _count_parses(monkeypatch)
    assert retry_after_seconds(mapped) == 3.0
    assert calls == []


def test_direct_construction_parses_retry_after_once_unless_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    response = make_response(429, wb_body(429, CONCURRENCY), headers={"retry-after": "3"})
    calls = _count_parses(monkeypatch)
    parsed = WBConcurrencyLimitError("busy", response=response, body=None)
    assert (parsed.retry_after, len(calls)) == (3.0, 1)
    given = WBConcurrencyLimitError("busy", response=response, body=None, retry_after=None)
    assert (given.retry_after, len(calls)) == (None, 1)
    # A plain openai error is still read from its headers.
    assert retry_after_seconds(_concurrency_with({"retry-after": "5"})) == 5.0
    assert len(calls) == 2
