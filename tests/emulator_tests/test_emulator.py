"""The W&B Inference emulator against its contract, over real HTTP on 127.0.0.1.

Clients: the ``openai`` SDK (``max_retries=0``, so every answer is seen once) and raw
httpx where the exact bytes matter (SSE framing, headers, error bodies).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from langchain_wandb_inference.models import all_models
from langchain_wandb_inference.testing import BackendError, Emulator, Fault
from langchain_wandb_inference.testing.backend import count_tokens

pytestmark = pytest.mark.emulator

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QUOTA = "You exceeded your current quota, please check your plan and billing details"
AUTH = {"Authorization": "Bearer emulator-key"}


def _served(
    *, reasoning: str | None = None, vision: bool | None = None, cached: bool = False
) -> str:
    """A served catalog model with these traits (so tests follow catalog updates)."""
    for info in all_models():
        if info.lifecycle.value == "retired":
            continue
        if reasoning is not None and info.reasoning.value != reasoning:
            continue
        if vision is not None and info.vision != vision:
            continue
        if cached and (info.price is None or info.price.cached_input is None):
            continue
        return info.id
    pytest.skip("no such model in the catalog")


def _retired() -> str:
    return next(i.id for i in all_models() if i.lifecycle.value == "retired")


@pytest.fixture(scope="module")
def module_emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emu(module_emu: Emulator) -> Emulator:
    module_emu.reset()
    return module_emu


def client(emu: Emulator, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.base_url, api_key="emulator-key", max_retries=0, **kwargs)


def user(text: str) -> Any:  # Any: the SDK wants its TypedDicts
    return [{"role": "user", "content": text}]


def post(
    emu: Emulator, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{emu.base_url}/chat/completions", json=body, headers=AUTH if headers is None else headers
    )


def chat(emu: Emulator, model: str = LLAMA, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", user("Hello"))
    response = post(emu, {"model": model, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def sse(emu: Emulator, body: dict[str, Any]) -> list[str]:
    """The ``data:`` payloads of a streamed answer, in order."""
    with httpx.stream(
        "POST", f"{emu.base_url}/chat/completions", json=body, headers=AUTH
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = text.split("\n\n")
    assert events[-1] == ""
    assert all(e.startswith("data: ") for e in events[:-1])
    return [e[len("data: ") :] for e in events[:-1]]


# --- a small JSON-schema validator (jsonschema is not a dependency) ----------------------


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> None:
    root = root or schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return validate(value, node, root)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                return validate(value, option, root)
            except AssertionError as error:
                errors.append(error)
        raise AssertionError(f"{value!r} matches no anyOf option: {errors}")
    if "enum" in schema:
        assert value in schema["enum"], (value, schema["enum"])
    kinds: dict[str, Any] = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    kind = schema.get("type")
    if kind is not None:
        assert isinstance(value, kinds[kind]), (value, kind)
        assert kind in ("boolean", "null") or not isinstance(value, bool), (value, kind)
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            assert name in value, (name, value)
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(props), (value, props)
        for name, sub in props.items():
            if name in value:
                validate(value[name], sub, root)
    if isinstance(value, list):
        assert schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9)
        for item in value:
            validate(item, schema.get("items", {}), root)
    if isinstance(value, str):
        assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert value >= schema.get("minimum", -float("inf"))
        assert value <= schema.get("maximum", float("inf"))
        assert value > schema.get("exclusiveMinimum", -float("inf"))
        assert value < schema.get("exclusiveMaximum", float("inf"))
    return None


def test_validator_rejects() -> None:
    """The validator used below must be able to fail."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}
    bad: Any
    for bad in ({"n": 4}, {"n": "1"}, {"n": True}, []):
        with pytest.raises(AssertionError):
            validate(bad, {**schema, "required": ["n"]})


# --- server, routes, auth ------------------------------------------------------------------


def test_binds_loopback_and_stops() -> None:
    emulator = Emulator().start()
    url = emulator.base_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
    assert httpx.get(f"{url}/models", headers=AUTH).status_code == 200
    emulator.stop()
    with pytest.raises(RuntimeError):
        _ = emulator.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models", headers=AUTH)


def test_models_lists_served_catalog(emu: Emulator) -> None:
    response = httpx.get(f"{emu.base_url}/models", headers=AUTH)
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert LLAMA in ids
    assert _retired() not in ids
    assert listing["data"][0] == {
        "id": ids[0],
        "object": "model",
        "created": 0,
        "owned_by": "system",
        "root": ids[0],
    }
    assert [m.id for m in client(emu).models.list()] == ids


def test_models_needs_auth(emu: Emulator) -> None:
    response = httpx.get(f"{emu.base_url}/models")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "invalid_api_key",
            "message": "Missing bearer authentication in header",
            "type": "invalid_request_error",
        }
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1/chat/completions")],
)
def test_other_routes_404(emu: Emulator, method: str, path: str) -> None:
    response = httpx.request(method, emu.base_url.removesuffix("/v1") + path, headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": 404, "message": "The requested resource was not found"}
    }


def test_missing_bearer(emu: Emulator) -> None:
    response = post(emu, {"model": LLAMA, "messages": user("hi")}, headers={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_wrong_key(emu: Emulator) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        openai.OpenAI(base_url=emu.base_url, api_key="nope", max_retries=0).chat.completions.create(
            model=LLAMA, messages=user("hi")
        )
    assert caught.value.response.json() == {
        "error": {"code": 401, "message": "Authentication failed"}
    }


def test_project_header() -> None:
    with Emulator(projects={"team/project"}) as emulator:
        ok = client(emulator, project="team/project").chat.completions.create(
            model=LLAMA, messages=user("hi")
        )
        assert ok.choices[0].message.content
        client(emulator).chat.completions.create(model=LLAMA, messages=user("hi"))  # optional
        for project in ("team/other", "no-slash", "a/b/c"):
            with pytest.raises(openai.AuthenticationError):
                client(emulator, project=project).chat.completions.create(
                    model=LLAMA, messages=user("hi")
                )
        assert emulator.requests[0].headers["openai-project"] == "team/project"


def test_any_well_formed_project_by_default(emu: Emulator) -> None:
    client(emu, project="any/thing").chat.completions.create(model=LLAMA, messages=user("hi"))
    with pytest.raises(openai.AuthenticationError):
        client(emu, project="malformed").chat.completions.create(model=LLAMA, messages=user("hi"))


# --- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [_retired(), "acme/no-such-model", LLAMA.lower()])
def test_unserved_model_404(emu: Emulator, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(emu).chat.completions.create(model=model, messages=user("hi"))
    assert caught.value.response.json() == {
        "error": {"code": 404, "message": f"The model `{model}` does not exist"}
    }


def test_lora_artifacts(emu: Emulator) -> None:
    assert chat(emu, "wandb-artifact:///team/project/adapter:latest")["choices"]
    assert (
        post(emu, {"model": "wandb-artifact:///adapter", "messages": user("x")}).status_code == 404
    )


def test_explicit_model_list() -> None:
    with Emulator(models=["acme/custom"]) as emulator:
        assert [m.id for m in client(emulator).models.list()] == ["acme/custom"]
        assert chat(emulator, "acme/custom")["choices"][0]["message"]["reasoning"] is None
        assert post(emulator, {"model": LLAMA, "messages": user("x")}).status_code == 404


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code", "message"),
    [
        (Fault.authentication(), 401, 401, "Authentication failed"),
        (Fault.quota(), 402, 402, QUOTA),
        (Fault.quota_429(), 429, 429, QUOTA),
        (
            Fault.personal_account(),
            429,
            429,
            "W&B Inference isn't available for personal accounts.",
        ),
        (Fault.region(), 403, 403, "Country, region, or territory not supported"),
        (
            Fault.gateway_disabled(),
            403,
            403,
            "The inference gateway is not enabled for your organization",
        ),
        (Fault.not_found(), 404, 404, "The requested resource was not found"),
        (Fault.not_found(model=True), 404, 404, f"The model `{LLAMA}` does not exist"),
        (
            Fault.concurrency(),
            429,
            "rate_limit_exceeded",
            f"Concurrency limit reached for requests: {LLAMA}-project limit reached",
        ),
        (Fault.server_error(), 500, 500, "The server had an error while processing your request"),
        (
            Fault.overloaded(),
            503,
            503,
            "The engine is currently overloaded, please try again later",
        ),
    ],
)
def test_error_faults(
    emu: Emulator, fault: Fault, status: int, code: int | str, message: str
) -> None:
    emu.script(LLAMA, fault)
    with pytest.raises(openai.APIStatusError) as caught:
        client(emu).chat.completions.create(model=LLAMA, messages=user("hi"))
    response = caught.value.response
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": message}}
    assert "retry-after" not in response.headers
    assert emu.count(LLAMA, status) == 1


def test_invalid_fault(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.invalid("logprobs", "logprobs is not supported by this model"))
    response = post(emu, {"model": LLAMA, "messages": user("hi")})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "logprobs"],
                "msg": "logprobs is not supported by this model",
                "type": "value_error",
            }
        ]
    }


def test_retry_after_and_latency(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.overloaded(retry_after=2.5, latency=0.3))
    started = time.monotonic()
    response = post(emu, {"model": LLAMA, "messages": user("hi")})
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2.5"


def test_script_then_normal_service(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.overloaded(), Fault.server_error())
    body = {"model": LLAMA, "messages": user("hi")}
    assert [post(emu, body).status_code for _ in range(3)] == [503, 500, 200]
    assert post(emu, {**body, "model": "openai/gpt-oss-20b"}).status_code == 200


def test_always_and_reset(emu: Emulator) -> None:
    body = {"model": LLAMA, "messages": user("hi")}
    emu.always(LLAMA, Fault.quota())
    emu.script(LLAMA, Fault.overloaded())
    assert [post(emu, body).status_code for _ in range(3)] == [503, 402, 402]
    emu.always(LLAMA, None)
    assert post(emu, body).status_code == 200
    emu.script(LLAMA, Fault.overloaded())
    emu.always(LLAMA, Fault.quota())
    emu.reset()
    assert emu.requests == []
    assert post(emu, body).status_code == 200


def test_a_request_from_before_a_reset_is_not_logged_after_it(emu: Emulator) -> None:
    """A hung request of one test used to land in the next test's log when it ended."""
    body = {"model": LLAMA, "messages": user("hi")}
    emu.always(LLAMA, Fault.hang(0.8))

    def hung() -> None:
        with contextlib.suppress(httpx.HTTPError):  # a hang ends by closing
            post(emu, body)

    before = threading.Thread(target=hung)
    before.start()
    for _ in range(500):  # until it holds its slot (bounded: 5 s)
        if emu.max_in_flight_seen.get(LLAMA):
            break
        time.sleep(0.01)
    emu.reset()
    emu.always(LLAMA, Fault.delay(2.0))  # still in flight when the hung one ends
    assert post(emu, body).status_code == 200
    before.join(timeout=10)
    assert [r.status for r in emu.requests] == [200]


def test_hang_times_out_the_client(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.hang(0.5))
    with pytest.raises(openai.APITimeoutError):
        client(emu, timeout=0.1).chat.completions.create(model=LLAMA, messages=user("hi"))


def test_hang_then_close(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.hang(0.2))
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        post(emu, {"model": LLAMA, "messages": user("hi")})
    assert time.monotonic() - started >= 0.2
    assert [r.status for r in emu.requests] == [0]


def test_stream_cut(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.stream_cut(3))
    chunks: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client(emu).chat.completions.create(
            model=LLAMA, messages=user("hi"), stream=True
        ):
            chunks.append(chunk)
    assert len(chunks) == 3
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert post(emu, {"model": LLAMA, "messages": user("hi")}).status_code == 200


def test_stream_cut_non_streamed(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.stream_cut(1))
    with pytest.raises(openai.APIConnectionError):
        client(emu).chat.completions.create(model=LLAMA, messages=user("hi"))


def test_delay(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.delay(0.3))
    started = time.monotonic()
    assert chat(emu)["choices"][0]["message"]["content"]
    assert time.monotonic() - started >= 0.3


def _burst(emulator: Emulator, projects: list[str | None]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(projects))
    results: list[httpx.Response] = []

    def call(project: str | None) -> None:
        headers = AUTH if project is None else {**AUTH, "OpenAI-Project": project}
        barrier.wait()
        results.append(post(emulator, {"model": LLAMA, "messages": user("hi")}, headers))

    threads = [threading.Thread(target=call, args=(p,)) for p in projects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrency_limit() -> None:
    with Emulator(concurrency_limit=2, latency=0.5) as emulator:
        results = _burst(emulator, [None] * 5)
        assert sorted(r.status_code for r in results) == [200, 200, 429, 429, 429]
        refused = next(r for r in results if r.status_code == 429)
        assert refused.json() == {
            "error": {
                "code": "rate_limit_exceeded",
                "message": f"Concurrency limit reached for requests: {LLAMA}-project limit reached",
            }
        }
        assert emulator.max_in_flight_seen == {LLAMA: 2}
        assert post(emulator, {"model": LLAMA, "messages": user("hi")}).status_code == 200


def test_concurrency_is_per_project() -> None:
    with Emulator(concurrency_limit=1, latency=0.5) as emulator:
        results = _burst(emulator, ["team/a", "team/b"])
        assert [r.status_code for r in results] == [200, 200]
        assert emulator.max_in_flight_seen == {LLAMA: 2}


# --- request validation ---------------------------------------------------------------------

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (
            {"temperature": 2.5},
            [("less_than_equal", ["temperature"], "Input should be less than or equal to 2")],
        ),
        (
            {"temperature": -0.1},
            [("greater_than_equal", ["temperature"], "Input should be greater than or equal to 0")],
        ),
        (
            {"cache_salt": ""},
            [("string_too_short", ["cache_salt"], "String should have at least 1 character")],
        ),
        (
            {"response_format": {"type": "xml"}},
            [
                (
                    "literal_error",
                    ["response_format", "type"],
                    "Input should be 'text', 'json_object' or 'json_schema'",
                )
            ],
        ),
        (
            {"response_format": {"type": "json_schema"}},
            [("missing", ["response_format", "json_schema"], "Field required")],
        ),
        (
            {"tools": [{"type": "retrieval"}]},
            [
                ("literal_error", ["tools", 0, "type"], "Input should be 'function'"),
                ("missing", ["tools", 0, "function"], "Field required"),
            ],
        ),
        (
            {"messages": []},
            [
                (
                    "too_short",
                    ["messages"],
                    "List should have at least 1 item after validation, not 0",
                )
            ],
        ),
        (
            {"messages": [{"role": "wizard", "content": "x"}]},
            [
                (
                    "literal_error",
                    ["messages", 0, "role"],
                    "Input should be 'system', 'developer', 'user', 'assistant' or 'tool'",
                )
            ],
        ),
        (
            {"messages": [{"role": "user"}]},
            [("missing", ["messages", 0, "content"], "Field required")],
        ),
        (
            {"messages": [{"role": "user", "content": 5}]},
            [
                (
                    "content_type",
                    ["messages", 0, "content"],
                    "Input should be a valid string or a list of content parts",
                )
            ],
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            [
                (
                    "literal_error",
                    ["messages", 0, "content", "parts", 0, "type"],
                    "Input should be 'text' or 'image_url'",
                )
            ],
        ),
        (
            {"messages": [{"role": "tool", "content": "3"}]},
            [("missing", ["messages", 0, "tool_call_id"], "Field required")],
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
            [
                (
                    "missing",
                    ["messages", 0, "tool_calls", 0, "function", "arguments"],
                    "Field required",
                )
            ],
        ),
        (
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            [
                (
                    "value_error",
                    ["tool_choice"],
                    "tool_choice names the function 'nope', which is not among the tools",
                )
            ],
        ),
        (
            {"tool_choice": "required"},
            [("value_error", ["tool_choice"], "tool_choice 'required' needs tools")],
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, IMAGE]}]},
            [
                (
                    "value_error",
                    ["messages", 0, "content", "parts", 1, "image_url"],
                    "This model does not accept images",
                )
            ],
        ),
        (
            {"max_tokens": 0},
            [("greater_than_equal", ["max_tokens"], "Input should be greater than or equal to 1")],
        ),
        (
            {"max_completion_tokens": 0},
            [
                (
                    "greater_than_equal",
                    ["max_completion_tokens"],
                    "Input should be greater than or equal to 1",
                )
            ],
        ),
        (
            {"chat_template_kwargs": "x"},
            [("dict_type", ["chat_template_kwargs"], "Input should be a valid dictionary")],
        ),
        (
            {"stop": 3},
            [
                ("string_type", ["stop", "str"], "Input should be a valid string"),
                ("list_type", ["stop", "list[str]"], "Input should be a valid list"),
            ],
        ),
        ({"model": None}, [("string_type", ["model"], "Input should be a valid string")]),
    ],
)
def test_422(
    emu: Emulator, change: dict[str, Any], errors: list[tuple[str, list[Any], str]]
) -> None:
    """FastAPI's shape, from pydantic's errors: every error, each located under ``body``."""
    response = post(emu, {"model": LLAMA, "messages": user("hi"), **change})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [(d["type"], d["loc"], d["msg"]) for d in detail] == [
        (kind, ["body", *loc], msg) for kind, loc, msg in errors
    ]
    assert all("input" in d for d in detail)  # FastAPI echoes the offending value


def test_422_reports_every_error_at_once(emu: Emulator) -> None:
    response = post(emu, {"model": LLAMA, "messages": [], "temperature": 3, "cache_salt": ""})
    assert [d["loc"] for d in response.json()["detail"]] == [
        ["body", "messages"],
        ["body", "temperature"],
        ["body", "cache_salt"],
    ]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (
            b'{"model": ',
            {
                "type": "json_invalid",
                "loc": ["body", 10],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting value"},
            },
        ),
        (
            b"[1]",
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": [1],
            },
        ),
    ],
)
def test_422_for_a_body_that_is_no_request(emu: Emulator, raw: bytes, detail: Any) -> None:
    """FastAPI's exact entries (its JSON-decode error and its body-model wording)."""
    response = httpx.post(f"{emu.base_url}/chat/completions", content=raw, headers=AUTH)
    assert response.status_code == 422
    assert response.json() == {"detail": [detail]}


def test_unknown_fields_and_lax_values_are_accepted(emu: Emulator) -> None:
    """Extra fields pass (W&B forwards them); values are validated laxly, as FastAPI does."""
    body = {"temperature": "0.5", "max_tokens": "8", "x_vendor": {"any": 1}, "stream": False}
    assert chat(emu, **body)["choices"][0]["message"]["content"]


# --- backend failures --------------------------------------------------------------------

CAPTURES = Path(__file__).parents[1] / "data" / "engines" / "llamacpp"


def capture(name: str) -> tuple[bytes, bytes]:
    """The head and the body of a real llama.cpp exchange, as received."""
    head, _, body = (CAPTURES / f"{name}.response.bin").read_bytes().partition(b"\r\n\r\n")
    return head, body


class _Refusing:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def complete(self, request: Any) -> Any:
        raise self.failure


@pytest.mark.parametrize(
    ("capture_name", "status"), [("ctx_overflow", 400), ("tool_format_error", 500)]
)
def test_backend_error_keeps_the_engines_words(capture_name: str, status: int) -> None:
    """W&B's shape, with llama.cpp's own status, message and type (not reworded)."""
    engine_error = json.loads(capture(capture_name)[1])["error"]
    failure = BackendError("llama.cpp failed", status, engine_error)
    with Emulator(backend=_Refusing(failure)) as emulator:
        response = post(emulator, {"model": LLAMA, "messages": user("hi")})
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": status, "message": engine_error["message"], "type": engine_error["type"]}
    }


def test_any_other_backend_failure_is_wb_500(caplog: pytest.LogCaptureFixture) -> None:
    with Emulator(backend=_Refusing(KeyError("bug"))) as emulator:
        response = post(emulator, {"model": LLAMA, "messages": user("hi")})
    assert response.status_code == 500
    assert response.json() == Fault.server_error().json()
    assert "backend failed" in caplog.text


def test_images_on_vision_model(emu: Emulator) -> None:
    content = [{"type": "text", "text": "Describe this"}, IMAGE]
    message = chat(emu, _served(vision=True), messages=[{"role": "user", "content": content}])
    assert message["choices"][0]["message"]["content"]


def test_other_params_accepted_and_logged(emu: Emulator) -> None:
    extras: dict[str, Any] = {
        "top_p": 0.5,
        "seed": 1,
        "frequency_penalty": 0.1,
        "user": "u",
        "chat_template_kwargs": {"enable_thinking": False},
        "reasoning_effort": "high",
        "cache_salt": "salt",
    }
    chat(emu, **extras)
    (record,) = emu.requests
    assert record.method == "POST"
    assert record.path == "/v1/chat/completions"
    assert record.model == LLAMA
    assert record.status == 200
    assert record.started <= record.ended
    assert record.headers["authorization"] == "Bearer emulator-key"
    assert {k: record.body[k] for k in extras} == extras
    assert emu.count() == emu.count(LLAMA) == emu.count(LLAMA, 200) == 1
    assert emu.count("other") == emu.count(status=500) == 0


# --- answers ------------------------------------------------------------------------------


def test_text_answer_is_marked_and_deterministic(emu: Emulator) -> None:
    first = chat(emu, messages=user("What is 2 + 2?"))
    second = chat(emu, messages=user("What is 2 + 2?"))
    message = first["choices"][0]["message"]
    assert message["content"].startswith("[emulator] ")
    assert "What is 2 + 2?" in message["content"]
    assert first["object"] == "chat.completion"
    assert first["model"] == LLAMA
    assert first["id"].startswith("chatcmpl-")
    assert first["choices"][0]["finish_reason"] == "stop"
    assert message == second["choices"][0]["message"]
    usage = first["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == count_tokens(message["content"])


def test_stop_sequence(emu: Emulator) -> None:
    full = chat(emu)["choices"][0]["message"]["content"]
    cut = chat(emu, stop=["answer"])["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["message"]["content"] == full[: full.index("answer")]


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens(emu: Emulator, param: str) -> None:
    limit: dict[str, Any] = {param: 3}
    result = chat(emu, **limit)
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["choices"][0]["message"]["content"] == "[emulator]"
    assert result["usage"]["completion_tokens"] == 3


WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "options": {
            "type": "object",
            "properties": {
                "detailed": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            },
            "required": ["detailed", "tags"],
        },
        "when": {"type": "string", "format": "date"},
        "note": {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]},
        "style": {"type": "string", "default": "plain"},
    },
    "required": ["city", "days", "unit", "ratio", "options"],
    "additionalProperties": False,
}
TOOLS: Any = [
    {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
]
WEATHER_PROMPT = "Use get_weather for 'Kyoto' over 10 days in fahrenheit."


def test_tool_call_arguments_follow_schema(emu: Emulator) -> None:
    result = chat(emu, messages=user(WEATHER_PROMPT), tools=TOOLS)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert re.fullmatch(r"call_[0-9a-f]+", call["id"])
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])
    validate(args, WEATHER)
    assert args["city"] == "Kyoto"
    assert args["days"] == 7  # 10, clamped to the maximum
    assert args["unit"] == "fahrenheit"
    assert args["style"] == "plain"
    assert chat(emu, messages=user(WEATHER_PROMPT), tools=TOOLS)["choices"] == result["choices"]


def test_tool_call_unicode_arguments(emu: Emulator) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "create_customer",
            "parameters": {
                "type": "object",
                "properties": {"customer_name": {"type": "string"}},
                "required": ["customer_name"],
            },
        },
    }
    result = chat(emu, messages=user("Create a customer named '你好啊集团'"), tools=[tool])
    arguments = result["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert "你好啊集团" in arguments
    assert json.loads(arguments) == {"customer_name": "你好啊集团"}


@pytest.mark.parametrize(
    ("tool_choice", "name"),
    [
        ("required", "noop"),
        ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),
    ],
)
@pytest.mark.filterwarnings("error")  # the validated request dumps without a warning
def test_forced_tool_choice(emu: Emulator, tool_choice: Any, name: str) -> None:
    result = chat(emu, messages=user("Hello!"), tools=TOOLS, tool_choice=tool_choice)
    assert result["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == name


def test_tool_choice_none_answers_in_text(emu: Emulator) -> None:
    result = chat(emu, messages=user(WEATHER_PROMPT), tools=TOOLS, tool_choice="none")
    assert result["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in result["choices"][0]["message"]


def test_after_tool_result_answers_with_it(emu: Emulator) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'},
    }
    messages = [
        *user(WEATHER_PROMPT),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24C"},
    ]
    message = chat(emu, messages=messages, tools=TOOLS)["choices"][0]["message"]
    assert message["content"] == "[emulator] The tool get_weather returned: Sunny, 24C"
    assert "tool_calls" not in message


def test_streamed_tool_call_matches(emu: Emulator) -> None:
    expected = chat(emu, messages=user(WEATHER_PROMPT), tools=TOOLS)["choices"][0]["message"]
    stream = client(emu).chat.completions.create(
        model=LLAMA, messages=user(WEATHER_PROMPT), tools=TOOLS, stream=True
    )
    deltas = [c.choices[0] for c in stream]
    calls = [tc for d in deltas for tc in d.delta.tool_calls or ()]
    assert calls[0].id == expected["tool_calls"][0]["id"]
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    assert len(calls) > 2  # arguments arrive in pieces
    arguments = "".join(c.function.arguments or "" for c in calls if c.function)
    assert arguments == expected["tool_calls"][0]["function"]["arguments"]
    assert deltas[-1].finish_reason == "tool_calls"


def test_json_schema_output(emu: Emulator) -> None:
    schema = {
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["name", "qty"],
            }
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1},
            "total": {"type": "number", "minimum": 5},
        },
        "required": ["items", "total"],
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "order", "strict": True, "schema": schema},
    }
    result = chat(emu, messages=user("Order 2 'apples'"), response_format=response_format)
    content = json.loads(result["choices"][0]["message"]["content"])
    validate(content, schema)
    assert content["items"][0] == {"name": "apples", "qty": 2}


@pytest.mark.parametrize(
    "prompt",
    [
        "Tell me a joke as JSON with keys setup and punchline.",
        "Return the result as a JSON with 'setup' and 'punchline' keys.",
        "Answer in JSON: `setup` and `punchline`.",
    ],
)
def test_json_object_output(emu: Emulator, prompt: str) -> None:
    result = chat(emu, messages=user(prompt), response_format={"type": "json_object"})
    content = json.loads(result["choices"][0]["message"]["content"])
    assert set(content) == {"setup", "punchline"}
    assert all(isinstance(v, str) for v in content.values())


# --- reasoning ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "enable_thinking", "reasons"),
    [
        ("none", None, False),
        ("none", True, False),
        ("always", None, True),
        ("always", False, True),
        ("default-on", None, True),
        ("default-on", False, False),
        ("default-off", None, False),
        ("default-off", True, True),
        ("adaptive", None, True),
        ("adaptive", False, False),
    ],
)
def test_reasoning_modes(
    emu: Emulator, mode: str, enable_thinking: bool | None, reasons: bool
) -> None:
    extra: dict[str, Any] = (
        {}
        if enable_thinking is None
        else {"chat_template_kwargs": {"enable_thinking": enable_thinking}}
    )
    message = chat(emu, _served(reasoning=mode), **extra)["choices"][0]["message"]
    assert "reasoning" in message
    assert "reasoning_content" not in message
    if reasons:
        assert message["reasoning"].startswith("[emulator] ")
    else:
        assert message["reasoning"] is None
    assert message["content"].startswith("[emulator] ")


def test_streamed_reasoning_comes_first(emu: Emulator) -> None:
    events = sse(
        emu, {"model": _served(reasoning="always"), "messages": user("hi"), "stream": True}
    )
    deltas = [json.loads(e)["choices"][0]["delta"] for e in events[:-1]]
    kinds = [next(iter(d)) for d in deltas[1:-1]]
    assert kinds == sorted(kinds, key=["reasoning", "content"].index)
    assert kinds[0] == "reasoning"
    assert kinds[-1] == "content"


def test_legacy_reasoning_field() -> None:
    model = _served(reasoning="always")
    with Emulator(legacy_reasoning_field=True) as emulator:
        message = chat(emulator, model)["choices"][0]["message"]
        assert "reasoning" not in message
        assert message["reasoning_content"].startswith("[emulator] ")
        assert chat(emulator)["choices"][0]["message"]["reasoning_content"] is None
        events = sse(emulator, {"model": model, "messages": user("hi"), "stream": True})
        assert "reasoning_content" in json.loads(events[1])["choices"][0]["delta"]


# --- streaming -------------------------------------------------------------------------------


def test_stream_shape_with_usage(emu: Emulator) -> None:
    expected = chat(emu, messages=user("Tell me a story"))
    events = sse(
        emu,
        {
            "model": LLAMA,
            "messages": user("Tell me a story"),
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert {c["model"] for c in chunks} == {LLAMA}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    *body, finish, final = chunks
    pieces = [c["choices"][0]["delta"]["content"] for c in body[1:]]
    assert len(pieces) > 3  # word by word
    assert "".join(pieces) == expected["choices"][0]["message"]["content"]
    assert all(c["choices"][0]["finish_reason"] is None for c in body)
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert final["choices"] == []
    assert final["usage"] == expected["usage"]


def test_stream_without_usage(emu: Emulator) -> None:
    events = sse(emu, {"model": LLAMA, "messages": user("hi"), "stream": True})
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["choices"] for e in events[:-1])


def test_stream_with_openai_sdk(emu: Emulator) -> None:
    stream = client(emu).chat.completions.create(
        model=LLAMA, messages=user("hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks: list[Any] = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[emulator] ")


# --- usage and prefix cache ----------------------------------------------------------------


def test_prefix_cache(emu: Emulator) -> None:
    model = _served(cached=True)
    messages: Any = [{"role": "system", "content": "You are terse. " * 20}, *user("hi")]
    first = chat(emu, model, messages=messages)["usage"]
    assert first["prompt_tokens_details"] == {"cached_tokens": 0}
    again = chat(emu, model, messages=[*messages[:1], *user("something else")])["usage"]
    assert 0 < again["prompt_tokens_details"]["cached_tokens"] < again["prompt_tokens"]
    salted = chat(emu, model, messages=messages, cache_salt="s")["usage"]
    assert salted["prompt_tokens_details"] == {"cached_tokens": 0}
    other = client(emu, project="team/other").chat.completions.create(
        model=model, messages=messages
    )
    assert other.usage is not None
    assert other.usage.prompt_tokens_details is not None
    assert other.usage.prompt_tokens_details.cached_tokens == 0


def test_no_cache_details_without_cache_price(emu: Emulator) -> None:
    chat(emu)
    assert "prompt_tokens_details" not in chat(emu)["usage"]


# --- CLI -------------------------------------------------------------------------------------


def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_wandb_inference.testing", "--api-key", "k"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        base_url = next(line.split()[1] for line in lines if line.startswith("base_url:"))
        assert any("api_key:  k" in line and "fake" in line for line in lines)
        models = httpx.get(f"{base_url}/models", headers={"Authorization": "Bearer k"})
        assert models.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
