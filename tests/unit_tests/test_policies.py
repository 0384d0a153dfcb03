"""The policies, driven step by step (sans-IO): no sleeping, no sockets.

Every row of the contract's error table is checked for how many requests it costs
and whether it is retried, handed over to a fallback, or raised at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from langchain_wandb_inference import concurrency, errors
from langchain_wandb_inference.budget import Budget
from langchain_wandb_inference.circuit_breaker import CircuitBreaker
from langchain_wandb_inference.concurrency import AdaptiveConcurrency, Gate
from langchain_wandb_inference.fallback import FallbackPolicy
from langchain_wandb_inference.pipeline import Call, Notify, Policy, Send, Sleep, compose, run
from langchain_wandb_inference.retry import RetryPolicy

URL = "https://api.inference.wandb.ai/v1"
REQUEST = httpx.Request("POST", URL + "/chat/completions")


def status_error(status: int, message: str, **headers: str) -> openai.APIStatusError:
    """The exception the openai SDK raises for this W&B answer."""
    body = {"error": {"code": status, "message": message}}
    response = httpx.Response(status, json=body, headers=headers, request=REQUEST)
    client = openai.OpenAI(api_key="x", base_url=URL)
    return client._make_status_error(
        f"Error code: {status} - {body}", body=body["error"], response=response
    )


def invalid_422(param: str) -> openai.APIStatusError:
    body = {"detail": [{"loc": ["body", param], "msg": "unsupported", "type": "value_error"}]}
    response = httpx.Response(422, json=body, request=REQUEST)
    client = openai.OpenAI(api_key="x", base_url=URL)
    return client._make_status_error("Error code: 422", body=body, response=response)


QUOTA = "You exceeded your current quota, please check your plan and billing details"
# (name, SDK error factory, retried?, hand over to a fallback at once?, after retries?)
ROWS: dict[str, tuple[Callable[[], BaseException], bool, str]] = {
    "401 invalid auth": (lambda: status_error(401, "Invalid Authentication"), False, "raise"),
    "401 auth failed": (lambda: status_error(401, "Authentication failed"), False, "raise"),
    "402 quota": (lambda: status_error(402, QUOTA), False, "raise"),
    "403 region": (
        lambda: status_error(403, "Country, region, or territory not supported"),
        False,
        "raise",
    ),
    "403 gateway": (
        lambda: status_error(403, "The inference gateway is not enabled for your organization"),
        False,
        "raise",
    ),
    "404 not found": (
        lambda: status_error(404, "The model `x/y` does not exist"),
        False,
        "at once",
    ),
    "422 invalid": (lambda: invalid_422("frequency_penalty"), False, "raise"),
    "429 concurrency": (
        lambda: status_error(429, "Concurrency limit reached for requests"),
        True,
        "after retries",
    ),
    "429 quota": (lambda: status_error(429, QUOTA), False, "raise"),
    "429 personal": (
        lambda: status_error(429, "W&B Inference isn't available for personal accounts."),
        False,
        "raise",
    ),
    "500 server": (
        lambda: status_error(500, "The server had an error while processing your request"),
        True,
        "after retries",
    ),
    "503 overloaded": (
        lambda: status_error(503, "The engine is currently overloaded, please try again later"),
        True,
        "at once",
    ),
    "timeout": (lambda: openai.APITimeoutError(REQUEST), True, "after retries"),
    "connection": (lambda: openai.APIConnectionError(request=REQUEST), True, "after retries"),
}


_SLEEPS: list[float] = []


@pytest.fixture(autouse=True)
def _recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits are recorded, not slept: the plan is the same, the clock is not."""
    _SLEEPS.clear()
    monkeypatch.setattr(Sleep, "run", lambda self: _SLEEPS.append(self.seconds))


@dataclass
class Driver:
    """Runs the real pipeline driver, answering each Send from a per-model script."""

    script: dict[str, list[Any]]
    sends: list[str] = field(default_factory=list)
    events: list[Notify] = field(default_factory=list)

    @property
    def sleeps(self) -> list[float]:
        return _SLEEPS

    def send(self, call: Call) -> Any:
        self.sends.append(call.model)
        queue = self.script.get(call.model) or ["ok:" + call.model]
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(outcome):
            raise outcome()
        return outcome

    def run(self, policies: list[Policy], model: str = "primary", **call_kwargs: Any) -> Any:
        call = Call(model=model, base_url=URL, **call_kwargs)
        result = run(compose(policies)(call), self.send, self.events.append)
        call.finish(model, None)
        return result


FAST = RetryPolicy(initial_delay=1.0, jitter=False)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_error_table_retry_behaviour(row: str) -> None:
    make_error, retried, _ = ROWS[row]
    driver = Driver({"primary": [make_error]})
    with pytest.raises(errors.WBInferenceError):
        driver.run([FAST])
    assert len(driver.sends) == (3 if retried else 1)
    assert driver.sleeps == ([1.0, 2.0] if retried else [])


@pytest.mark.parametrize("row", sorted(ROWS))
def test_error_table_fallback_behaviour(row: str) -> None:
    make_error, _, fallback = ROWS[row]
    driver = Driver({"primary": [make_error], "backup": ["answer"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), FAST]
    if fallback == "raise":
        with pytest.raises(errors.WBInferenceError):
            driver.run(policies)
        assert driver.sends == ["primary"]
        return
    assert driver.run(policies) == "answer"
    primary_sends = 1 if fallback == "at once" else 3
    assert driver.sends == ["primary"] * primary_sends + ["backup"]
    assert len(driver.sleeps) == primary_sends - 1
    assert [e.name for e in driver.events if e.name == "fallback"] == ["fallback"]


def test_transient_then_success_costs_one_request_each() -> None:
    server = lambda: status_error(500, "The server had an error while processing your request")  # noqa: E731
    driver = Driver({"primary": [server, server, "fine"]})
    assert driver.run([FAST]) == "fine"
    assert driver.sends == ["primary"] * 3
    assert [e.name for e in driver.events] == ["retry", "retry"]


def test_retry_after_header_wins() -> None:
    def busy() -> BaseException:
        return status_error(429, "Concurrency limit reached for requests", **{"retry-after": "7"})

    driver = Driver({"primary": [busy, "ok"]})
    driver.run([FAST])
    assert driver.sleeps == [7.0]


def test_retry_after_ms_header() -> None:
    def busy() -> BaseException:
        return status_error(503, "The engine is currently overloaded", **{"retry-after-ms": "250"})

    driver = Driver({"primary": [busy, "ok"]})
    driver.run([FAST])
    assert driver.sleeps == [0.25]


def test_full_jitter_stays_under_the_exponential_bound() -> None:
    policy = RetryPolicy(max_attempts=6, initial_delay=1.0, max_delay=5.0)
    driver = Driver({"primary": [lambda: status_error(500, "x")]})
    with pytest.raises(errors.WBServerError):
        driver.run([policy])
    bounds = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert len(driver.sleeps) == 5
    assert all(0 <= s <= b for s, b in zip(driver.sleeps, bounds, strict=True))


def test_deadline_stops_retrying_before_the_wait() -> None:
    driver = Driver({"primary": [lambda: status_error(500, "x")]})
    with pytest.raises(errors.WBServerError):
        driver.run([FAST], deadline=time.monotonic() + 0.5)
    assert driver.sends == ["primary"]  # a 1 s wait would overrun: give up now


def test_retry_policy_validates() -> None:
    with pytest.raises(ValueError, match="retry=None"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=0)


def test_every_model_failing_raises_last_error_with_history() -> None:
    overloaded = lambda: status_error(503, "The engine is currently overloaded")  # noqa: E731
    gone = lambda: status_error(404, "The model `b` does not exist")  # noqa: E731
    driver = Driver({"primary": [overloaded], "b": [gone], "c": [overloaded]})
    with pytest.raises(errors.WBOverloadedError) as info:
        driver.run([FallbackPolicy(("b", "c")), FAST])
    history = info.value.history
    assert [(a.model, a.error_type) for a in history] == [
        ("primary", "WBOverloadedError"),
        ("b", "WBModelNotFoundError"),
        ("c", "WBOverloadedError"),
    ]
    # the last model has no one to hand over to: its 503 is retried
    assert driver.sends == ["primary", "b", "c", "c", "c"]


# -- circuit breaker ---------------------------------------------------------------


def test_circuit_opens_then_skips_without_a_request() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown=60)
    server = lambda: status_error(500, "x")  # noqa: E731
    driver = Driver({"primary": [server]})
    for _ in range(2):
        with pytest.raises(errors.WBServerError):
            driver.run([breaker])
    with pytest.raises(errors.WBCircuitOpenError):
        driver.run([breaker])
    assert driver.sends == ["primary", "primary"]


def test_open_circuit_hands_over_at_once() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=60)
    driver = Driver({"primary": [lambda: status_error(500, "x")], "backup": ["ok"]})
    with pytest.raises(errors.WBServerError):
        driver.run([breaker])
    driver.sends.clear()
    assert driver.run([FallbackPolicy(("backup",)), FAST, breaker]) == "ok"
    assert driver.sends == ["backup"]
    assert driver.sleeps == []


def test_circuit_probe_after_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=0.05)
    driver = Driver({"primary": [lambda: status_error(503, "x"), "recovered"]})
    with pytest.raises(errors.WBOverloadedError):
        driver.run([breaker])
    with pytest.raises(errors.WBCircuitOpenError):
        driver.run([breaker])
    time.sleep(0.06)
    assert driver.run([breaker]) == "recovered"
    assert driver.run([breaker]) == "recovered"  # closed again


def test_client_errors_do_not_open_the_circuit() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=60)
    driver = Driver({"primary": [lambda: invalid_422("logprobs")]})
    for _ in range(3):
        with pytest.raises(errors.WBInvalidRequestError):
            driver.run([breaker])
    assert len(driver.sends) == 3


def test_circuits_are_per_model() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown=60)
    driver = Driver({"primary": [lambda: status_error(500, "x")], "other": ["ok"]})
    with pytest.raises(errors.WBServerError):
        driver.run([breaker])
    assert driver.run([breaker], model="other") == "ok"


# -- budget -------------------------------------------------------------------------


def test_budget_refuses_before_any_request() -> None:
    budget = Budget(0.001)
    model = "meta-llama/Llama-3.1-8B-Instruct"  # 0.22 / 0.22 per 1M
    budget.record(model, {"input_tokens": 2000, "output_tokens": 3000, "total_tokens": 5000})
    assert budget.spent_usd == pytest.approx(0.0011)
    driver = Driver({})
    with pytest.raises(errors.WBBudgetExceededError):
        driver.run([budget], model=model)
    assert driver.sends == []


def test_budget_floor_stops_the_call_that_would_exceed() -> None:
    budget = Budget(0.01)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    driver = Driver({})
    with pytest.raises(errors.WBBudgetExceededError):
        driver.run([budget], model=model, prompt_tokens=50_000)  # 0.011 USD of prompt alone
    assert driver.sends == []
    assert driver.run([budget], model=model, prompt_tokens=1_000) == "ok:" + model


def test_budget_counts_answers_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    budget = Budget(1.0, warn_at=0.5)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    usage = {"input_tokens": 1_500_000, "output_tokens": 1_000_000, "total_tokens": 2_500_000}
    budget.record(model, usage)  # 0.55 USD
    budget.record(model, {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    assert budget.spent_usd == pytest.approx(0.55, rel=1e-3)
    assert sum("reached 50%" in r.getMessage() for r in caplog.records) == 1


def test_budget_flags_unpriced_models(caplog: pytest.LogCaptureFixture) -> None:
    budget = Budget(1.0)
    budget.record("wandb-artifact:///t/p/a:v1", {"input_tokens": 10, "output_tokens": 10})
    assert budget.spent_usd == 0
    assert any("no price known" in r.getMessage() for r in caplog.records)


# -- concurrency --------------------------------------------------------------------


def test_gate_slow_start_then_drops_to_what_was_in_flight() -> None:
    gate = Gate(initial_limit=2, probe_every=4)
    assert gate.acquire(0) and gate.acquire(0)
    assert not gate.acquire(0)  # full: a third caller times out at once
    gate.release(congested=False, succeeded=True)  # demand was at the limit: grow
    assert gate.capacity() == 3
    for _ in range(2):
        assert gate.acquire(0)
    assert gate.in_flight == 3
    gate.release(congested=True, succeeded=False)  # a 429 while 2 others are in flight
    assert gate.capacity() == 2
    assert not gate.slow_start


def test_gate_probes_up_slowly_after_congestion() -> None:
    gate = Gate(initial_limit=4, probe_every=2)
    for _ in range(4):
        gate.acquire(0)
    gate.release(congested=True, succeeded=False)  # limit -> 3
    assert gate.capacity() == 3
    grown_after = 0
    for n in range(1, 20):
        gate.release(congested=False, succeeded=True)
        gate.acquire(0)
        if gate.capacity() == 4:
            grown_after = n
            break
    assert grown_after == 2 * 3  # probe_every rounds of a full window


def test_gate_respects_cap_and_does_not_grow_past_it() -> None:
    gate = Gate(initial_limit=10, probe_every=4, cap=2)
    assert gate.capacity() == 2
    for _ in range(20):
        assert gate.acquire(0) and gate.acquire(0)
        gate.release(congested=False, succeeded=True)
        gate.release(congested=False, succeeded=True)
    assert gate.limit == 2  # no hidden growth to burst with once the cap is lifted


def test_instances_with_different_caps_do_not_share_a_gate() -> None:
    call = Call(model="m", base_url=URL)
    capped, free = (
        AdaptiveConcurrency(max_concurrency=1).gate(call),
        AdaptiveConcurrency().gate(call),
    )
    assert capped is not free
    assert capped is AdaptiveConcurrency(max_concurrency=1).gate(call)
    assert capped.acquire(0)
    assert not capped.acquire(0)
    assert free.acquire(0)


def test_gate_hands_slots_to_threads_in_order() -> None:
    gate = Gate(initial_limit=1, probe_every=4)
    gate.cap = 1
    assert gate.acquire(None)
    order: list[int] = []

    def worker(n: int) -> None:
        assert gate.acquire(5)
        order.append(n)
        gate.release(congested=False, succeeded=True)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.02)  # queue them in a known order
    gate.release(congested=False, succeeded=True)
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2]
    assert gate.in_flight == 0


async def test_gate_serves_coroutines_and_threads_alike() -> None:
    gate = Gate(initial_limit=1, probe_every=4)
    gate.cap = 1
    assert gate.acquire(None)
    waiter = asyncio.create_task(gate.aacquire(5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    threading.Thread(target=gate.release, kwargs={"congested": False, "succeeded": True}).start()
    assert await asyncio.wait_for(waiter, 5)
    assert gate.in_flight == 1


async def test_gate_async_timeout_and_cancel_leave_no_leak() -> None:
    gate = Gate(initial_limit=1, probe_every=4)
    gate.cap = 1
    assert await gate.aacquire(None)
    assert not await gate.aacquire(0.01)
    task = asyncio.create_task(gate.aacquire(None))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.release(congested=False, succeeded=True)
    assert gate.in_flight == 0
    assert await gate.aacquire(0)


def test_limiter_holds_slot_until_answer_consumed() -> None:
    limiter = AdaptiveConcurrency(max_concurrency=1)
    call = Call(model="m", base_url=URL)
    gate = limiter.gate(call)
    driver = Driver({})
    driver.run([limiter], model="m")
    assert gate.in_flight == 0  # Driver.run finishes the call
    plan = compose([limiter])(call)
    plan.send(None).run()  # Acquire
    assert gate.in_flight == 1
    assert isinstance(plan.send(None), Send)
    with pytest.raises(StopIteration):
        plan.send("answer")
    assert gate.in_flight == 1  # still streaming
    call.finish("m", None)
    assert gate.in_flight == 0


def test_limiter_timeout_is_a_wb_timeout() -> None:
    limiter = AdaptiveConcurrency(max_concurrency=1)
    call = Call(model="m", base_url=URL, deadline=time.monotonic() + 0.05)
    limiter.gate(call).acquire(None)
    driver = Driver({})
    with pytest.raises(errors.WBTimeoutError):
        driver.run([limiter], model="m", deadline=time.monotonic() + 0.05)
    assert driver.sends == []


def test_concurrency_429_lowers_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "REQUEUES", 0)  # the three others here never finish
    limiter = AdaptiveConcurrency()
    call = Call(model="m", base_url=URL)
    gate = limiter.gate(call)
    gate.limit, gate.in_flight = 8.0, 3  # three others in flight
    driver = Driver({"m": [lambda: status_error(429, "Concurrency limit reached for requests")]})
    with pytest.raises(errors.WBConcurrencyLimitError):
        driver.run([limiter], model="m")
    assert gate.capacity() == 3


def test_429_among_our_own_requests_waits_for_a_slot_not_a_backoff() -> None:
    limiter = AdaptiveConcurrency()
    call = Call(model="m", base_url=URL)
    gate = limiter.gate(call)
    gate.limit = 3.0
    assert gate.acquire(0) and gate.acquire(0)  # two of ours already in flight
    busy = lambda: status_error(429, "Concurrency limit reached for requests")  # noqa: E731
    driver = Driver({"m": [busy, "answer"]})
    threading.Timer(0.05, gate.release, kwargs={"congested": False, "succeeded": True}).start()
    assert driver.run([FAST, limiter], model="m") == "answer"
    assert driver.sends == ["m", "m"]
    assert driver.sleeps == []  # no backoff: waiting for our own slot was the backoff
    assert gate.capacity() == 2  # the limit dropped to what the service carried


def test_429_with_nothing_else_in_flight_goes_to_the_retry_policy() -> None:
    busy = lambda: status_error(429, "Concurrency limit reached for requests")  # noqa: E731
    driver = Driver({"m": [busy, "answer"]})
    assert driver.run([FAST, AdaptiveConcurrency()], model="m") == "answer"
    assert driver.sleeps == [1.0]


def test_retry_after_longer_than_max_delay_fails_now() -> None:
    def busy() -> BaseException:
        return status_error(503, "The engine is currently overloaded", **{"retry-after": "3600"})

    driver = Driver({"primary": [busy, "ok"]})
    with pytest.raises(errors.WBOverloadedError):
        driver.run([FAST])
    assert driver.sends == ["primary"]
    assert driver.sleeps == []


@pytest.mark.parametrize(
    ("request_timeout", "deadline_in", "expected"),
    [
        (60.0, None, 60.0),
        (None, None, None),
        (60.0, 5.0, pytest.approx(5.0, abs=0.05)),
        (1.0, 5.0, 1.0),
        ((3.0, 7.0), 5.0, (3.0, 7.0)),  # per-phase limits pass through unchanged
    ],
)
def test_call_timeout(request_timeout: Any, deadline_in: float | None, expected: Any) -> None:
    deadline = None if deadline_in is None else time.monotonic() + deadline_in
    assert (
        Call(model="m", base_url=URL, request_timeout=request_timeout, deadline=deadline).timeout()
        == expected
    )


def test_expired_deadline_sends_nothing() -> None:
    driver = Driver({})
    with pytest.raises(errors.WBTimeoutError):
        driver.run([FallbackPolicy(("backup",)), FAST], deadline=time.monotonic() - 0.01)
    assert driver.sends == []
