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
import traceback
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
    WBMalformedResponseError,
    WBModelNotFoundError,
    WBOverloadedError,
    WBPermissionDeniedError,
    WBQuotaExceededError,
    WBServerError,
    WBStreamInterruptedError,
    WBTimeoutError,
    WBUnprocessableEntityError,
    classify,
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
        ["WANDB_API_KEY", "https://wandb.ai/authorize", "OpenAI-Project"],
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
        ["in flight", "max_concurrency"],
        id="429-concurrency-documented",
    ),
    pytest.param(
        429,
        wb_body("rate_limit_exceeded", CONCURRENCY_LIVE),
        WBConcurrencyLimitError,
        ["in flight", "max_concurrency"],
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
        ["transient", "fallback_models"],
        id="500-server-error",
    ),
    pytest.param(
        503,
        wb_body(503, OVERLOADED),
        WBOverloadedError,
        ["overloaded", "fallback_models"],
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
    assert "No team/project was sent" in str(mapped)
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
        # The wordings of the engines W&B serves on (contract §10), verbatim.
        (
            400,
            "The input (140000 tokens) is longer than the model's context length (131072 tokens).",
        ),
        (
            400,
            "request (630 tokens) exceeds the available context size (512 tokens), try "
            "increasing it",
        ),
        (400, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096."),
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
        lifecycle=errors.Lifecycle.RETIRED,
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
        replacement="new/Model", retired_on=None, lifecycle=errors.Lifecycle.DEPRECATED
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
    # The policies build errors from facts: a bare request (httpx, whatever openai uses).
    import httpx

    for request in (httpx.Request("POST", URL), http.Request("POST", URL)):
        timeout = WBTimeoutError(request=request, url=URL)
        assert timeout.is_retryable is True
        assert "did not answer in time" in str(timeout)
        assert URL in str(timeout)
    circuit = WBCircuitOpenError(model=MODEL, base_url=BASE_URL, retry_in=12.5, retry_after=12.5)
    assert isinstance(circuit, ModelError)
    assert not isinstance(circuit, openai.OpenAIError)
    assert circuit.is_retryable is False
    assert (circuit.model, circuit.base_url, circuit.retry_in) == (MODEL, BASE_URL, 12.5)
    assert circuit.retry_after == 12.5
    assert "fallback_models" in str(circuit)
    budget = WBBudgetExceededError(
        spent_usd=4.99, budget_usd=5.0, hints=("$4.9900 of the $5.00 budget is spent.",)
    )
    assert isinstance(budget, ModelError)
    assert not isinstance(budget, openai.OpenAIError)
    assert budget.is_retryable is False
    assert (budget.spent_usd, budget.budget_usd) == (4.99, 5.0)
    assert "$4.9900 of the $5.00 budget" in str(budget)
    assert "no request was sent" in str(budget)


def test_status_classes_can_be_built_directly() -> None:
    response = make_response(429, wb_body(429, CONCURRENCY))
    exc = WBConcurrencyLimitError(response=response, body=None, model=MODEL, retry_after=3.0)
    assert exc.retry_after == 3.0
    assert exc.request_id == REQUEST_ID
    assert exc.status_code == 429
    assert str(exc).startswith("W&B Inference concurrency limit reached")


def test_facts_learnt_later_rebuild_the_message() -> None:
    mapped = classify(sdk_error(500, wb_body(500, SERVER)))
    assert isinstance(mapped, WBServerError)
    assert "Gave up" not in str(mapped)  # nobody said it was retried
    mapped.annotate(attempts=3)
    assert str(mapped).endswith("Gave up after 3 attempts.")
    assert mapped.args == (mapped.message,)
    mapped.annotate(attempts=1, not_retried="the stream failed after 4 chunk(s) reached the caller")
    assert "Not retried: the stream failed after 4 chunk(s)" in str(mapped)


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
        WBStreamInterruptedError: True,
        WBMalformedResponseError: True,
        WBCircuitOpenError: False,
        WBBudgetExceededError: False,
    }
    assert {cls: cls.is_retryable for cls in expected} == expected
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
    mapped = classify(_concurrency_with(headers))
    assert isinstance(mapped, WBInferenceError)
    assert mapped.retry_after == expected


def test_retry_after_http_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    mapped = classify(_concurrency_with({"retry-after": when}))
    assert isinstance(mapped, WBInferenceError)
    assert mapped.retry_after is not None
    assert 100 < mapped.retry_after <= 121


def test_retry_after_is_mentioned_in_the_concurrency_message() -> None:
    mapped = classify(_concurrency_with({"retry-after": "4"}))
    assert "asked to wait 4s" in str(mapped)


def test_retry_after_without_a_response() -> None:
    timeout = classify(openai.APITimeoutError(make_request()))
    assert isinstance(timeout, WBInferenceError)
    assert timeout.retry_after is None


# ---------------------------------------------------------------------------------------
# Credentials never leak: the chain is redacted in place, once
# ---------------------------------------------------------------------------------------


def _places(exc: BaseException) -> dict[str, str]:
    """Every place of one exception a secret could be read from."""
    places = {
        "str": str(exc),
        "repr": repr(exc),
        "args": repr(exc.args),
        "vars": repr({k: v for k, v in vars(exc).items() if k not in ("request", "response")}),
    }
    for name in ("request", "response"):
        try:
            message = getattr(exc, name, None)
        except RuntimeError:  # httpx: no request set
            message = None
        if message is not None:
            places[f"{name}.headers"] = repr(list(message.headers.multi_items()))
            places[f"{name}.url"] = str(getattr(message, "url", ""))
            if name == "response":
                places["response.text"] = message.text
                places["response.request.headers"] = repr(
                    list(message.request.headers.multi_items())
                )
    return places


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


def _leaks(exc: BaseException, secrets: tuple[str, ...] = ("sk-secret", PROJECT)) -> list[str]:
    """Where, in ``exc`` and its whole chain and traceback, a secret can be read."""
    found = []
    for depth, error in enumerate(_chain(exc)):
        for name, text in _places(error).items():
            if any(secret in text for secret in secrets):
                found.append(f"{depth}:{type(error).__name__}.{name}")
    shown = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if any(secret in shown for secret in secrets):
        found.append("traceback")
    return found


def _raised(original: BaseException, **kwargs: Any) -> BaseException:
    """``raise classify(original) from original``, as the pipeline does."""
    try:
        try:
            raise original
        except Exception as exc:
            mapped = classify(exc, **kwargs)
            if mapped is exc:
                raise
            raise mapped from exc
    except Exception as raised:
        return raised
    raise AssertionError("unreachable")


@pytest.mark.parametrize("status", [401, 402, 403, 404, 405, 422, 429, 500, 503])
def test_secrets_never_leak_from_status_errors(status: int) -> None:
    # The server even echoes the header and the project back: they are scrubbed too.
    echoed = f"Authorization: Bearer {SECRET} is not valid for {PROJECT}"
    body = (
        {"detail": [{"loc": ["body", "seed"], "msg": echoed, "type": "x"}]}
        if status == 422
        else wb_body(status, echoed)
    )
    original = sdk_error(status, body, headers={"www-authenticate": f"Bearer {SECRET}"})
    # The test data really carries the secret (so this test can fail) ...
    assert original.request.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET in original.response.text
    raised = _raised(original, model=MODEL)
    # ... and nothing in the chain carries it, unmapped statuses (405) included.
    assert _leaks(raised) == []
    assert original.request.headers["authorization"] == "[REDACTED]"  # redacted in place
    assert original.response.request is original.request
    if isinstance(raised, WBInferenceError):
        assert raised.request is original.request  # the SDK's own object, not a copy
        assert "is not valid for [REDACTED]" in str(raised)


def test_secrets_never_leak_from_a_real_sdk_chain() -> None:
    """The SDK's exception, httpx's, and the shared request: one redaction cleans all."""
    import httpx

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused Bearer {SECRET}", request=request)

    client = openai.OpenAI(
        api_key=SECRET,
        base_url=BASE_URL,
        project=PROJECT,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(refuse)),
    )
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    original = info.value
    assert "sk-secret" in repr(list(original.request.headers.multi_items()))
    raised = _raised(original, model=MODEL, project=PROJECT)
    assert isinstance(raised, WBConnectionError)
    assert len(_chain(raised)) >= 3  # ours, the SDK's, httpx's
    assert _leaks(raised) == []
    assert "The transport said: proxy refused [REDACTED]" in str(raised)  # the real cause


def test_secrets_never_leak_from_timeouts_and_connection_errors() -> None:
    timeout = _raised(openai.APITimeoutError(make_request()))
    assert _leaks(timeout) == []
    failure = openai.APIConnectionError(request=make_request())
    failure.__cause__ = http.ConnectError(f"proxy said: Bearer {SECRET}")
    connection = _raised(failure)
    assert isinstance(connection, WBConnectionError)
    assert _leaks(connection) == []
    assert "proxy said" in str(connection)


def test_a_project_is_replaced_whole_never_inside_other_words() -> None:
    request = http.Request(
        "POST", URL, headers={"Authorization": f"Bearer {SECRET}", "OpenAI-Project": "team/p"}
    )
    body = wb_body(401, "team/p is unknown; team/project and my team are not team/p")
    mapped = classify(sdk_error(401, body, request=request))
    assert mapped.server_message == (
        "[REDACTED] is unknown; team/project and my team are not [REDACTED]"
    )


def test_history_is_listed_in_str() -> None:
    from langchain_wandb_inference.errors import Attempt

    exc = classify(sdk_error(503, wb_body(503, OVERLOADED)), model="b/model")
    assert isinstance(exc, WBInferenceError)
    message = exc.message
    exc.history = [
        Attempt("a/model", "WBOverloadedError", "W&B Inference is overloaded ..."),
        Attempt("b/model", "WBOverloadedError", str(exc)),
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


@pytest.mark.parametrize("status", [401, 403, 429, 500])
def test_project_header_is_redacted_everywhere(status: int) -> None:
    original = sdk_error(status, wb_body(status, "nope"), headers={"OpenAI-Project": PROJECT})
    # The test data really carries the project, in the request and echoed in the response.
    assert original.request.headers["OpenAI-Project"] == PROJECT
    assert original.response.headers["openai-project"] == PROJECT
    mapped = classify(original, model=MODEL)
    assert isinstance(mapped, WBInferenceError)
    assert mapped.request.headers["openai-project"] == "[REDACTED]"
    assert mapped.response.headers["openai-project"] == "[REDACTED]"
    assert mapped.request.headers["user-agent"] == "test"  # the other headers are kept
    assert _leaks(mapped) == []


def test_project_header_is_redacted_whatever_its_case() -> None:
    request = http.Request(
        "POST", URL, headers={"Authorization": f"Bearer {SECRET}", "OPENAI-project": PROJECT}
    )
    for mapped in (
        classify(openai.APITimeoutError(request)),
        classify(sdk_error(500, wb_body(500, SERVER), request=request)),
    ):
        assert isinstance(mapped, WBInferenceError)
        assert PROJECT not in repr(list(mapped.request.headers.raw))
        assert mapped.request.headers["openai-project"] == "[REDACTED]"


def test_401_advice_points_at_the_project_without_naming_it() -> None:
    mapped = classify(sdk_error(401, wb_body(401, "Authentication failed")))
    assert isinstance(mapped, WBAuthenticationError)
    assert "A team/project was sent" in str(mapped)
    assert _leaks(mapped) == []


def test_request_like_object_with_plain_dict_headers_is_redacted() -> None:
    request = SimpleNamespace(
        method="POST",
        url=f"{URL}?key={SECRET}",
        headers={"Authorization": f"Bearer {SECRET}", "OpenAI-Project": PROJECT},
        content=b"",
    )
    original = openai.APITimeoutError(request)  # type: ignore[arg-type]
    mapped = classify(original)
    assert isinstance(mapped, WBTimeoutError)
    assert request.headers == {"Authorization": "[REDACTED]", "OpenAI-Project": "[REDACTED]"}
    assert SECRET not in str(mapped)


# ---------------------------------------------------------------------------------------
# Retry-After is parsed once
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(429, wb_body(429, CONCURRENCY)), (429, wb_body(429, QUOTA)), (503, wb_body(503, OVERLOADED))],
)
def test_retry_after_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, status: int, body: dict[str, Any]
) -> None:
    original = sdk_error(status, body, headers={"retry-after": "7"})
    calls: list[object] = []
    parse = errors._parse_retry_after

    def counting(headers: Any) -> float | None:
        calls.append(headers)
        return parse(headers)

    monkeypatch.setattr(errors, "_parse_retry_after", counting)
    mapped = classify(original)
    assert isinstance(mapped, WBInferenceError)
    assert mapped.retry_after == 7.0
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------
# Each class carries its decisions; the README's table is made from them
# ---------------------------------------------------------------------------------------


def _classes(root: type[WBInferenceError] = WBInferenceError) -> list[type[WBInferenceError]]:
    """The taxonomy below ``root``, depth first, in definition order."""
    found: list[type[WBInferenceError]] = []
    for cls in root.__subclasses__():
        if cls.__module__ == errors.__name__:
            found += [cls, *_classes(cls)]
    return found


def _table_row(cls: type[WBInferenceError]) -> str:
    when = (cls.__doc__ or "").strip().splitlines()[0]
    circuit = "counts" if cls.counts_against_circuit else "-"
    retried = "yes" if cls.is_retryable else "no"
    return (
        f"| `{cls.__name__}` | {when} | {retried} | {cls.fallback.value} | {circuit} "
        f"| {int(cls.exit_code)} |"
    )


def test_readme_error_table_is_made_from_the_classes() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = [_table_row(cls) for cls in _classes()]
    table = "\n".join(rows)
    assert table in readme, "README error table is stale; regenerate it from:\n" + table


def test_every_class_is_exported_and_decided() -> None:
    classes = _classes()
    assert {c.__name__ for c in classes} <= set(errors.__all__)
    for cls in classes:
        assert cls.__doc__ and cls.title, cls
        assert isinstance(cls.fallback, errors.Fallback)
        assert cls.exit_code in errors.ExitCode
        assert "__init__" not in vars(cls), f"{cls.__name__} needs no constructor of its own"
