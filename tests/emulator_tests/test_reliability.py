"""Every row of the contract's error table, against the emulator, on every call path.

For each documented error: how many HTTP requests it costs, whether it is retried,
handed to a fallback model at once, after retries, or raised — on invoke, ainvoke,
stream, astream, batch and abatch.  Backoff is shortened (``initial_delay``) so the
counts, not the clock, are what is tested.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable, Iterator
from functools import reduce
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from langchain_wandb_inference import ChatWBInference, CircuitBreaker, RetryPolicy
from langchain_wandb_inference.errors import (
    WBAuthenticationError,
    WBConcurrencyLimitError,
    WBConnectionError,
    WBContextOverflowError,
    WBInferenceError,
    WBInvalidRequestError,
    WBMalformedResponseError,
    WBModelNotFoundError,
    WBOverloadedError,
    WBPermissionDeniedError,
    WBQuotaExceededError,
    WBServerError,
    WBTimeoutError,
)
from langchain_wandb_inference.testing import BackendError, Emulator, Fault

PRIMARY = "meta-llama/Llama-3.1-8B-Instruct"
BACKUP = "meta-llama/Llama-3.3-70B-Instruct"
QUICK = RetryPolicy(initial_delay=0.01, max_delay=0.05)

# row -> (fault, error class, retried?, fallback: "raise" | "at once" | "after retries")
ROWS: dict[str, tuple[Callable[[], Fault], type[WBInferenceError], bool, str]] = {
    "401": (Fault.authentication, WBAuthenticationError, False, "raise"),
    "402 quota": (Fault.quota, WBQuotaExceededError, False, "raise"),
    "403 region": (Fault.region, WBPermissionDeniedError, False, "raise"),
    "403 gateway": (Fault.gateway_disabled, WBPermissionDeniedError, False, "raise"),
    "404": (Fault.not_found, WBModelNotFoundError, False, "at once"),
    "422": (
        lambda: Fault.invalid("frequency_penalty", "unsupported"),
        WBInvalidRequestError,
        False,
        "raise",
    ),
    "429 concurrency": (Fault.concurrency, WBConcurrencyLimitError, True, "after retries"),
    "429 quota": (Fault.quota_429, WBQuotaExceededError, False, "raise"),
    "429 personal": (Fault.personal_account, WBPermissionDeniedError, False, "raise"),
    "500": (Fault.server_error, WBServerError, True, "after retries"),
    "503": (Fault.overloaded, WBOverloadedError, True, "at once"),
    # What engines and gateways send in the wild (contract §10), bytes from real engines.
    "500 llama.cpp tool format": (Fault.tool_format_error, WBServerError, True, "after retries"),
    "500 inside the 200 stream": (Fault.stream_error, WBServerError, True, "after retries"),
    "503 inside the 200 stream": (
        lambda: Fault.stream_error(Fault.overloaded()),
        WBOverloadedError,
        True,
        "at once",
    ),
    "cut before any content": (
        lambda: Fault.stream_cut(1),
        WBConnectionError,  # a stream: WBStreamInterruptedError, a JSON body: a broken read
        True,
        "after retries",
    ),
    "cut cleanly before any content": (
        lambda: Fault.stream_cut(1, clean=True),
        (WBConnectionError, WBMalformedResponseError),  # type: ignore[dict-item]
        True,
        "after retries",
    ),
    "200 invalid JSON": (Fault.invalid_json, WBMalformedResponseError, True, "after retries"),
    "200 choices: []": (Fault.no_choices, WBMalformedResponseError, True, "after retries"),
    "200 message: null": (Fault.null_message, WBMalformedResponseError, True, "after retries"),
    "200 empty stream": (Fault.empty_stream, WBMalformedResponseError, True, "after retries"),
    "200 only [DONE]": (Fault.only_done, WBMalformedResponseError, True, "after retries"),
    "200 proxy HTML": (
        lambda: Fault.proxy_html(200),
        WBMalformedResponseError,
        True,
        "after retries",
    ),
    "502 proxy HTML": (lambda: Fault.proxy_html(502), WBServerError, True, "after retries"),
    "overflow vLLM": (
        lambda: Fault.context_overflow("vllm"),
        WBContextOverflowError,
        False,
        "raise",
    ),
    "overflow SGLang": (
        lambda: Fault.context_overflow("sglang"),
        WBContextOverflowError,
        False,
        "raise",
    ),
    "overflow llama.cpp": (
        lambda: Fault.context_overflow("llamacpp"),
        WBContextOverflowError,
        False,
        "raise",
    ),
    "overflow TGI": (
        lambda: Fault.context_overflow("tgi"),
        WBContextOverflowError,
        False,
        "raise",
    ),
}
PATHS = ("invoke", "ainvoke", "stream", "astream", "batch", "abatch")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh(emulator: Emulator) -> None:
    emulator.reset()


def make(emu: Emulator, **kwargs: Any) -> ChatWBInference:
    params: dict[str, Any] = {
        "model": PRIMARY,
        "api_key": "emulator-key",
        "base_url": emu.base_url,
        "retry": QUICK,
        "circuit_breaker": None,
        **kwargs,
    }
    return ChatWBInference(**params)


def call(llm: ChatWBInference, path: str) -> BaseMessage:
    """One request through the named path; raises what the path raises."""
    if path == "invoke":
        return llm.invoke("hello")
    if path == "ainvoke":
        return asyncio.run(llm.ainvoke("hello"))
    if path == "stream":
        return reduce(operator.add, llm.stream("hello"))
    if path == "astream":

        async def collect() -> BaseMessage:
            return reduce(operator.add, [c async for c in llm.astream("hello")])

        return asyncio.run(collect())
    if path == "batch":
        (result,) = llm.batch(["hello"], return_exceptions=True)
    else:
        (result,) = asyncio.run(llm.abatch(["hello"], return_exceptions=True))
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("row", sorted(ROWS))
def test_error_row_alone(emulator: Emulator, row: str, path: str) -> None:
    fault, error_type, retried, _ = ROWS[row]
    emulator.always(PRIMARY, fault())
    with pytest.raises(error_type):
        call(make(emulator), path)
    assert emulator.count(PRIMARY) == (3 if retried else 1)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("row", sorted(r for r, v in ROWS.items() if v[2]))
def test_transient_error_then_success(emulator: Emulator, row: str, path: str) -> None:
    fault, _, _, _ = ROWS[row]
    emulator.script(PRIMARY, fault(), fault())
    answer = call(make(emulator), path)
    assert answer.content
    assert emulator.count(PRIMARY) == 3


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("row", sorted(ROWS))
def test_error_row_with_fallback(emulator: Emulator, row: str, path: str) -> None:
    fault, error_type, _, fallback = ROWS[row]
    emulator.always(PRIMARY, fault())
    llm = make(emulator, fallback_models=[BACKUP])
    if fallback == "raise":
        with pytest.raises(error_type):
            call(llm, path)
        assert (emulator.count(PRIMARY), emulator.count(BACKUP)) == (1, 0)
        return
    answer = call(llm, path)
    assert answer.response_metadata["model_name"] == BACKUP
    primary_requests = 1 if fallback == "at once" else 3
    assert (emulator.count(PRIMARY), emulator.count(BACKUP)) == (primary_requests, 1)


def test_quota_costs_one_request_even_with_default_policy(emulator: Emulator) -> None:
    emulator.always(PRIMARY, Fault.quota())
    llm = make(emulator, retry=RetryPolicy(), circuit_breaker=CircuitBreaker())
    started = time.monotonic()
    with pytest.raises(WBQuotaExceededError) as info:
        llm.invoke("hello")
    assert time.monotonic() - started < 1.0  # no backoff
    assert emulator.count() == 1
    assert "credits" in str(info.value).lower()


def test_overloaded_hands_over_without_backoff(emulator: Emulator) -> None:
    emulator.always(PRIMARY, Fault.overloaded())
    llm = make(emulator, retry=RetryPolicy(initial_delay=5.0), fallback_models=[BACKUP])
    started = time.monotonic()
    assert llm.invoke("hello").response_metadata["model_name"] == BACKUP
    assert time.monotonic() - started < 2.0


def test_fallback_keeps_tools_and_schema(emulator: Emulator) -> None:
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        return city

    emulator.always(PRIMARY, Fault.overloaded())
    llm = make(emulator, fallback_models=[BACKUP])
    message = llm.bind_tools([get_weather]).invoke("Weather in Oslo?")
    assert message.tool_calls[0]["name"] == "get_weather"
    backup_body = next(r.body for r in emulator.requests if r.model == BACKUP)
    assert backup_body is not None
    assert backup_body["tools"][0]["function"]["name"] == "get_weather"

    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    emulator.reset()
    emulator.always(PRIMARY, Fault.overloaded())
    result = llm.with_structured_output(City).invoke("Name a city")
    assert isinstance(result, City)
    backup_body = next(r.body for r in emulator.requests if r.model == BACKUP)
    assert backup_body is not None
    assert backup_body["response_format"]["type"] == "json_schema"


def test_all_models_failing_carries_history(emulator: Emulator) -> None:
    emulator.always(PRIMARY, Fault.overloaded())
    emulator.always(BACKUP, Fault.not_found())
    with pytest.raises(WBModelNotFoundError) as info:
        make(emulator, fallback_models=[BACKUP]).invoke("hello")
    assert [a.model for a in info.value.history] == [PRIMARY, BACKUP]
    assert PRIMARY in str(info.value)


def test_retired_model_hands_over(emulator: Emulator) -> None:
    from langchain_wandb_inference import _settings

    retired = "meta-llama/Llama-4-Scout-17B-16E-Instruct"  # emulator answers 404 like W&B
    _settings._warned_models.discard(retired)  # warned once per process
    with pytest.warns(DeprecationWarning, match="Qwen3.5-35B-A3B"):
        llm = make(emulator, model=retired, fallback_models=[BACKUP])
    assert llm.invoke("hello").response_metadata["model_name"] == BACKUP
    assert emulator.count(retired) == 1


def test_circuit_breaker_skips_failing_model(emulator: Emulator) -> None:
    emulator.always(PRIMARY, Fault.server_error())
    breaker = CircuitBreaker(minimum_calls=2, window=2, cooldown=60)
    llm = make(emulator, retry=RetryPolicy(max_attempts=1), circuit_breaker=breaker)
    for n in range(2):
        with pytest.raises(WBServerError):
            llm.invoke(f"hello {n}")
    # Open now, but with no fallback model nowhere is better: the call is still sent.
    with pytest.raises(WBServerError):
        llm.invoke("hello 2")
    assert emulator.count(PRIMARY) == 3
    with_backup = make(
        emulator,
        retry=RetryPolicy(max_attempts=1),
        circuit_breaker=breaker,
        fallback_models=[BACKUP],
    )
    assert with_backup.invoke("hello").response_metadata["model_name"] == BACKUP
    assert emulator.count(PRIMARY) == 3  # skipped: no request to the open circuit


def test_hung_server_is_a_timeout_within_the_deadline(emulator: Emulator) -> None:
    emulator.always(PRIMARY, Fault.hang(5.0))
    llm = make(emulator, timeout=0.3, retry=RetryPolicy(initial_delay=0.01, deadline=1.0))
    started = time.monotonic()
    with pytest.raises(WBTimeoutError):
        llm.invoke("hello")
    assert time.monotonic() - started < 1.5


def test_stream_cut_after_first_chunk_raises_without_restart(emulator: Emulator) -> None:
    emulator.script(PRIMARY, Fault.stream_cut(after_chunks=3))
    llm = make(emulator)
    received: list[str] = []
    with pytest.raises(WBInferenceError):
        for chunk in llm.stream("hello"):
            received.append(chunk.text)
    assert emulator.count(PRIMARY) == 1  # no silent restart
    assert len(received) >= 1


def test_stream_failure_before_first_chunk_is_retried(emulator: Emulator) -> None:
    emulator.script(PRIMARY, Fault.overloaded(), Fault.server_error())
    text = "".join(c.text for c in make(emulator).stream("hello"))
    assert text
    assert emulator.count(PRIMARY) == 3


def test_batch_under_concurrency_limit_has_no_failed_item() -> None:
    with Emulator(latency=0.05, concurrency_limit=2) as emu:
        llm = make(emu, retry=RetryPolicy(initial_delay=0.05))
        results = llm.batch([f"q{n}" for n in range(16)], return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)]
        assert emu.max_in_flight_seen[PRIMARY] <= 2


async def test_abatch_under_concurrency_limit_has_no_failed_item() -> None:
    with Emulator(latency=0.05, concurrency_limit=2) as emu:
        llm = make(emu, retry=RetryPolicy(initial_delay=0.05))
        results = await llm.abatch([f"q{n}" for n in range(16)], return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)]
        assert emu.max_in_flight_seen[PRIMARY] <= 2


def test_retry_after_is_honoured(emulator: Emulator) -> None:
    emulator.script(PRIMARY, Fault.concurrency(retry_after=0.4))
    llm = make(emulator, retry=RetryPolicy(initial_delay=0.0))
    started = time.monotonic()
    llm.invoke("hello")
    assert time.monotonic() - started >= 0.4
    assert emulator.count(PRIMARY) == 2


def test_retry_events_reach_callbacks(emulator: Emulator) -> None:
    from langchain_core.callbacks import BaseCallbackHandler

    class Events(BaseCallbackHandler):
        def __init__(self) -> None:
            self.retries = 0
            self.custom: list[tuple[str, Any]] = []

        def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
            self.retries += 1

        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            self.custom.append((name, data))

    emulator.script(PRIMARY, Fault.server_error())
    emulator.always(BACKUP, None)
    events = Events()
    make(emulator).invoke("hello", config={"callbacks": [events]})
    assert events.retries == 1
    emulator.reset()
    emulator.always(PRIMARY, Fault.overloaded())
    make(emulator, fallback_models=[BACKUP]).invoke("hello", config={"callbacks": [events]})
    assert events.custom == [
        (
            "wb_inference_fallback",
            {"from_model": PRIMARY, "to_model": BACKUP, "error": "WBOverloadedError"},
        )
    ]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_json_schema_refused_retries_once_with_function_calling(
    emulator: Emulator, asynchronous: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    emulator.script(
        PRIMARY, Fault.invalid("response_format", "json_schema is not supported by this model")
    )
    structured = make(emulator).with_structured_output(City)
    prompt = "Name a city and its population"
    result = asyncio.run(structured.ainvoke(prompt)) if asynchronous else structured.invoke(prompt)
    assert isinstance(result, City)
    first, second = (r.body or {} for r in emulator.requests)
    assert first["response_format"]["type"] == "json_schema"
    assert "response_format" not in second
    assert second["tool_choice"]["function"]["name"] == "City"
    assert emulator.count(PRIMARY) == 2
    assert any("retrying once with function calling" in r.getMessage() for r in caplog.records)


def test_other_invalid_requests_are_not_retried_as_function_calls(emulator: Emulator) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    emulator.always(PRIMARY, Fault.invalid("temperature", "must be between 0 and 2"))
    with pytest.raises(WBInvalidRequestError):
        make(emulator).with_structured_output(City).invoke("Name a city")
    assert emulator.count(PRIMARY) == 1


def test_async_calls_survive_new_event_loops(emulator: Emulator) -> None:
    """asyncio.run twice with one model: langchain-openai's shared client breaks here."""
    llm = make(emulator)
    for _ in range(3):
        assert asyncio.run(llm.ainvoke("hello")).content
        assert asyncio.run(collect_astream(llm))


async def collect_astream(llm: ChatWBInference) -> str:
    return "".join([chunk.text async for chunk in llm.astream("hello")])


class _FailingBackend:
    """A backend that refuses, as llama.cpp does (``BackendError``), or crashes (any other)."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def complete(self, request: Any) -> Any:
        raise self.failure


# llama.cpp's own overflow error, verbatim (tests/data/engines/llamacpp/ctx_overflow).
LLAMACPP_OVERFLOW = {
    "code": 400,
    "message": "request (630 tokens) exceeds the available context size (512 tokens), try increasing it",
    "type": "exceed_context_size_error",
    "n_prompt_tokens": 630,
    "n_ctx": 512,
}


def test_backend_context_overflow_is_a_typed_400() -> None:
    from langchain_wandb_inference.errors import WBContextOverflowError

    failure = BackendError(LLAMACPP_OVERFLOW["message"], 400, LLAMACPP_OVERFLOW)
    with Emulator(backend=_FailingBackend(failure)) as emu:
        with pytest.raises(WBContextOverflowError):
            make(emu).invoke("a very long prompt")
        assert emu.count() == 1


def test_backend_crash_is_a_retried_500() -> None:
    with Emulator(backend=_FailingBackend(RuntimeError("backend bug"))) as emu:
        with pytest.raises(WBServerError):
            make(emu).invoke("hello")
        assert emu.count() == 3


def test_deadline_spent_on_a_hung_primary_is_a_timeout_not_a_crash(emulator: Emulator) -> None:
    emulator.always(PRIMARY, Fault.hang(5.0))
    llm = make(
        emulator, fallback_models=[BACKUP], retry=RetryPolicy(initial_delay=0.01, deadline=0.3)
    )
    started = time.monotonic()
    with pytest.raises(WBTimeoutError) as info:
        llm.invoke("hello")
    assert time.monotonic() - started < 1.0
    assert emulator.count(BACKUP) == 0  # no time was left to send it
    assert info.value.history  # which models were tried


def test_async_pools_of_finished_event_loops_are_dropped(emulator: Emulator) -> None:
    llm = make(emulator)
    for _ in range(5):
        asyncio.run(llm.ainvoke("hello"))
    transport = llm.root_async_client._client._transport
    assert len(transport._pools) <= 1  # only the last loop's pool, swept at the next request


def test_our_own_deadline_does_not_open_the_circuit(emulator: Emulator) -> None:
    from langchain_wandb_inference.errors import WBDeadlineExceededError

    emulator.always(PRIMARY, Fault.delay(0.3))  # healthy, just slower than our deadline
    breaker = CircuitBreaker(minimum_calls=1, window=1, cooldown=60)
    hasty = make(emulator, circuit_breaker=breaker, retry=RetryPolicy(deadline=0.1))
    for n in range(2):
        with pytest.raises(WBDeadlineExceededError):
            hasty.invoke(f"hello {n}")
    patient = make(emulator, circuit_breaker=breaker, fallback_models=[BACKUP])
    assert patient.invoke("hello").content  # the circuit stayed closed
    assert emulator.count(BACKUP) == 0
    assert emulator.count(PRIMARY) == 3


@pytest.mark.parametrize("path", PATHS)
def test_unusual_sse_framing_is_a_normal_answer(emulator: Emulator, path: str) -> None:
    emulator.always(PRIMARY, Fault.sse_framing())
    assert call(make(emulator), path).content
    assert emulator.count(PRIMARY) == 1


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fault", ["keepalive only", "slow drip"])
def test_answers_that_never_complete_are_bounded(fault: str, path: str) -> None:
    never = (
        Fault.keepalive(interval=0.05) if fault == "keepalive only" else Fault.drip(interval=0.05)
    )
    with Emulator() as own:  # its endless answers must not outlive the test into others
        own.always(PRIMARY, never)
        llm = make(own, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(WBTimeoutError):
            call(llm, path)
        assert time.monotonic() - started < 60  # generous: what matters is that it ends
        assert own.count(PRIMARY) == 3  # a timeout is transient: retried


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "batch", "abatch"])
def test_a_slow_but_progressing_answer_is_retried_as_a_stream(path: str) -> None:
    """The non-streamed attempt outlives its timeout; the streamed retry keeps coming."""
    with Emulator() as own:
        own.always(PRIMARY, Fault.slow_generation(3.0))
        answer = call(make(own, timeout=1.0), path)
        assert answer.content
        assert [bool(r.body.get("stream")) for r in own.requests] == [False, True]
