"""The policies, driven through the real pipeline driver: no sleeping, no sockets.

Every row of the contract's error table is checked for how many requests it costs and
whether it is retried, handed over to a fallback, or raised at once.  The decisions are
the error classes' own (``is_retryable``, ``fallback``, ``counts_against_circuit``).
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

from langchain_wandb_inference import errors
from langchain_wandb_inference.policies import CircuitBreaker, RetryPolicy, _state
from langchain_wandb_inference.policies import _concurrency as concurrency
from langchain_wandb_inference.policies._circuit_breaker import Breaker
from langchain_wandb_inference.policies._concurrency import AdaptiveConcurrency
from langchain_wandb_inference.policies._fallback import FallbackPolicy
from langchain_wandb_inference.policies._pipeline import (
    Call,
    Notify,
    Policy,
    Sleep,
    compose,
    run,
)
from langchain_wandb_inference.policies._state import LOCAL, LocalGate
from langchain_wandb_inference.testing import set_testing

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
CONCURRENCY = "Concurrency limit reached for requests"
# row -> (SDK error factory, retried?, fallback: "raise" | "at once" | "after retries")
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
    "429 concurrency": (lambda: status_error(429, CONCURRENCY), True, "after retries"),
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
        result, finish = run(compose(policies)(call), self.send, self.events.append)
        finish(model, None)
        return result


FAST = RetryPolicy(initial_delay=1.0, jitter=False)


def breaker(**settings: Any) -> Breaker:
    return Breaker(CircuitBreaker(**settings), LOCAL)


def limiter(cap: int | None = None) -> AdaptiveConcurrency:
    return AdaptiveConcurrency(LOCAL, cap)


# -- the error table ----------------------------------------------------------------


@pytest.mark.parametrize("row", sorted(ROWS))
def test_error_table_retry_behaviour(row: str) -> None:
    make_error, retried, _ = ROWS[row]
    driver = Driver({"primary": [make_error]})
    with pytest.raises(errors.WBInferenceError) as info:
        driver.run([FAST])
    assert len(driver.sends) == (3 if retried else 1)
    assert driver.sleeps == ([1.0, 2.0] if retried else [])
    assert ("Gave up after 3 attempts." in str(info.value)) is retried


@pytest.mark.parametrize("row", sorted(ROWS))
def test_error_table_fallback_behaviour(row: str) -> None:
    make_error, _, fallback = ROWS[row]
    driver = Driver({"primary": [make_error], "backup": ["answer"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), FAST]
    if fallback == "raise":
        with pytest.raises(errors.WBInferenceError) as info:
            driver.run(policies)
        assert driver.sends == ["primary"]
        assert info.value.fallback is errors.Fallback.NEVER
        return
    assert driver.run(policies) == "answer"
    primary_sends = 1 if fallback == "at once" else 3
    assert driver.sends == ["primary"] * primary_sends + ["backup"]
    assert len(driver.sleeps) == primary_sends - 1
    assert [e.name for e in driver.events if e.name == "fallback"] == ["fallback"]


def test_the_error_decides_not_a_list_in_the_policy() -> None:
    """A new error class's own attributes are all the policies need."""

    class WBFlakyError(errors.WBServerError):
        """A made-up transient error that hands over at once."""

        fallback = errors.Fallback.AT_ONCE

    def flaky() -> BaseException:
        return WBFlakyError(response=httpx.Response(500, request=REQUEST))

    driver = Driver({"primary": [flaky], "backup": ["answer"]})
    assert driver.run([FallbackPolicy(("backup",)), FAST]) == "answer"
    assert driver.sends == ["primary", "backup"]  # handed over at once, not retried


# -- retry --------------------------------------------------------------------------


def test_transient_then_success_costs_one_request_each() -> None:
    server = lambda: status_error(500, "The server had an error while processing your request")  # noqa: E731
    driver = Driver({"primary": [server, server, "fine"]})
    assert driver.run([FAST]) == "fine"
    assert driver.sends == ["primary"] * 3
    assert [e.name for e in driver.events] == ["retry", "retry"]


def test_retry_after_header_wins() -> None:
    def busy() -> BaseException:
        return status_error(429, CONCURRENCY, **{"retry-after": "7"})

    driver = Driver({"primary": [busy, "ok"]})
    driver.run([FAST])
    assert driver.sleeps == [7.0]


def test_retry_after_ms_header() -> None:
    def busy() -> BaseException:
        return status_error(503, "The engine is currently overloaded", **{"retry-after-ms": "250"})

    driver = Driver({"primary": [busy, "ok"]})
    driver.run([FAST])
    assert driver.sleeps == [0.25]


def test_retry_after_longer_than_max_delay_is_honoured() -> None:
    """max_delay bounds our own backoff; a server's routine Retry-After: 1 is waited for."""

    def busy() -> BaseException:
        return status_error(503, "The engine is currently overloaded", **{"retry-after": "1"})

    driver = Driver({"primary": [busy, "ok"]})
    assert driver.run([RetryPolicy(max_delay=0.2)]) == "ok"
    assert driver.sleeps == [1.0]


def test_retry_after_beyond_the_ceiling_fails_now_and_says_why() -> None:
    def busy() -> BaseException:
        return status_error(503, "The engine is currently overloaded", **{"retry-after": "3600"})

    driver = Driver({"primary": [busy, "ok"]})
    with pytest.raises(errors.WBOverloadedError) as info:
        driver.run([FAST])
    assert driver.sends == ["primary"]
    assert driver.sleeps == []
    assert "asked to wait 3600s" in str(info.value)


def test_retry_after_that_would_overrun_the_deadline_fails_now() -> None:
    def busy() -> BaseException:
        return status_error(503, "The engine is currently overloaded", **{"retry-after": "5"})

    driver = Driver({"primary": [busy, "ok"]})
    with pytest.raises(errors.WBOverloadedError) as info:
        driver.run([FAST], deadline=time.monotonic() + 2)
    assert driver.sends == ["primary"]
    assert "overrun the deadline" in str(info.value)


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


def test_no_retry_policy_says_nothing_about_retries() -> None:
    driver = Driver({"primary": [lambda: status_error(500, "x")]})
    with pytest.raises(errors.WBServerError) as info:
        driver.run([])
    assert "etried" not in str(info.value)  # neither "retried" nor "Not retried"
    assert "Gave up" not in str(info.value)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"max_attempts": 0}, "retry=None"),
        ({"max_attempts": 1.5}, "max_attempts"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": float("nan")}, "deadline"),
        ({"initial_delay": -1}, "initial_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
    ],
)
def test_retry_policy_validates(settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetryPolicy(**settings)


def test_set_testing_makes_one_attempt_without_waits() -> None:
    server = lambda: status_error(500, "x")  # noqa: E731
    set_testing(True)
    try:
        driver = Driver({"primary": [server]})
        with pytest.raises(errors.WBServerError):
            driver.run([RetryPolicy(max_attempts=5)])
        assert driver.sends == ["primary"]
        assert driver.sleeps == []
        set_testing(True, attempts=3)
        driver = Driver({"primary": [server, server, "ok"]})
        assert driver.run([RetryPolicy(max_attempts=5, initial_delay=10)]) == "ok"
        assert driver.sleeps == [0.0, 0.0]
    finally:
        set_testing(False)
    _SLEEPS.clear()
    driver = Driver({"primary": [server]})
    with pytest.raises(errors.WBServerError):
        driver.run([RetryPolicy(max_attempts=2, jitter=False)])
    assert driver.sleeps == [1.0]


# -- fallback ------------------------------------------------------------------------


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
    assert "Models tried, in order:" in str(info.value)
    # the last model has no one to hand over to: its 503 is retried
    assert driver.sends == ["primary", "b", "c", "c", "c"]


def test_expired_deadline_sends_nothing() -> None:
    driver = Driver({})
    with pytest.raises(errors.WBDeadlineExceededError):
        driver.run([FallbackPolicy(("backup",)), FAST], deadline=time.monotonic() - 0.01)
    assert driver.sends == []


# -- circuit breaker ------------------------------------------------------------------


def server_500() -> BaseException:
    return status_error(500, "The server had an error while processing your request")


def distinct(driver: Driver, policies: list[Policy], n: int) -> None:
    """``n`` calls with different requests, each failing."""
    for i in range(n):
        with pytest.raises(errors.WBInferenceError):
            driver.run(policies, fingerprint=lambda i=i: f"request-{i}")


def test_circuit_opens_on_failure_rate_with_minimum_calls() -> None:
    driver = Driver({"primary": [server_500], "backup": ["ok"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), breaker(minimum_calls=4, window=4)]
    for i in range(3):
        assert driver.run(policies, fingerprint=lambda i=i: f"r{i}") == "ok"
    assert driver.sends.count("primary") == 3  # 3 failures of 3: fewer than minimum_calls
    driver.sends.clear()
    assert driver.run(policies, fingerprint=lambda: "r3") == "ok"
    assert driver.sends == ["primary", "backup"]  # the 4th failure opens it
    driver.sends.clear()
    assert driver.run(policies, fingerprint=lambda: "r4") == "ok"
    assert driver.sends == ["backup"]  # open: handed over at once, no request to primary
    assert driver.sleeps == []


def test_circuit_counts_calls_not_attempts() -> None:
    """Two calls during a brief outage (3 attempts each) do not open the circuit."""
    driver = Driver({"primary": [server_500, server_500, server_500, "back"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), FAST, breaker(minimum_calls=4)]
    for i in range(2):
        assert driver.run(policies, fingerprint=lambda i=i: f"r{i}") in ("ok:backup", "back")
    driver.sends.clear()
    assert driver.run(policies, fingerprint=lambda: "r9") == "back"
    assert driver.sends == ["primary"]  # the restarted server is asked at once


def test_circuit_success_rate_keeps_it_closed() -> None:
    script: list[Any] = [server_500, "ok"] * 10
    driver = Driver({"primary": script, "backup": ["fallback"]})
    policies: list[Policy] = [
        FallbackPolicy(("backup",)),
        breaker(failure_rate=0.7, minimum_calls=4, window=10),
    ]
    for i in range(12):
        driver.run(policies, fingerprint=lambda i=i: f"r{i}")
    assert driver.sends.count("primary") == 12  # at most 60% failures < 70%: never skipped


def test_one_prompts_repeatable_failure_does_not_block_other_prompts() -> None:
    """A request that fails every time (llama.cpp's format 500) counts once."""
    driver = Driver({"primary": [server_500], "backup": ["ok"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), breaker(minimum_calls=3, window=5)]
    for _ in range(6):
        driver.run(policies, fingerprint=lambda: "the same prompt")
    driver.script["primary"] = ["answer"]
    driver.sends.clear()
    assert driver.run(policies, fingerprint=lambda: "another prompt") == "answer"
    assert driver.sends == ["primary"]


def test_without_a_fallback_an_open_circuit_never_refuses(caplog: pytest.LogCaptureFixture) -> None:
    driver = Driver({"primary": [server_500]})
    policies: list[Policy] = [breaker(minimum_calls=2, window=2, cooldown=60)]
    distinct(driver, policies, 2)
    driver.script["primary"] = ["recovered"]
    assert driver.run(policies, fingerprint=lambda: "x") == "recovered"  # sent anyway
    assert any("no fallback model can serve" in r.getMessage() for r in caplog.records)
    with_backup = [FallbackPolicy(("backup",)), *policies]
    driver.sends.clear()
    assert driver.run(with_backup, fingerprint=lambda: "y") == "recovered"
    assert driver.sends == ["primary"]  # its success closed the circuit


def test_circuit_probe_after_cooldown() -> None:
    policies: list[Policy] = [
        FallbackPolicy(("backup",)),
        breaker(minimum_calls=1, window=1, cooldown=0.05),
    ]
    driver = Driver({"primary": [server_500, server_500, "recovered"], "backup": ["b"]})
    assert driver.run(policies) == "b"  # opens
    assert driver.run(policies) == "b"
    assert driver.sends == ["primary", "backup", "backup"]  # open: skipped
    time.sleep(0.06)
    assert driver.run(policies) == "b"  # the probe fails: open for another cooldown
    assert driver.run(policies) == "b"
    assert driver.sends[-3:] == ["primary", "backup", "backup"]
    time.sleep(0.06)
    assert driver.run(policies) == "recovered"  # the probe succeeds: closed
    assert driver.run(policies) == "recovered"


def test_client_errors_do_not_open_the_circuit() -> None:
    driver = Driver({"primary": [lambda: invalid_422("logprobs")], "backup": ["ok"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), breaker(minimum_calls=1, window=1)]
    distinct(driver, policies, 3)
    assert driver.sends == ["primary"] * 3


def test_circuits_are_per_model() -> None:
    driver = Driver({"primary": [server_500], "other": ["ok"], "backup": ["b"]})
    policies: list[Policy] = [FallbackPolicy(("backup",)), breaker(minimum_calls=1, window=1)]
    driver.run(policies)
    assert driver.run(policies, model="other") == "ok"


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_rate": 0},
        {"failure_rate": 1.5},
        {"minimum_calls": 0},
        {"window": 5, "minimum_calls": 10},
        {"cooldown": -1},
        {"cooldown": float("nan")},
        {"probes": 0},
    ],
)
def test_circuit_breaker_validates(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="circuit_breaker=None"):
        CircuitBreaker(**settings)


# -- concurrency ---------------------------------------------------------------------


def test_gate_slow_start_then_drops_to_what_was_in_flight() -> None:
    gate = LocalGate(initial_limit=2, probe_every=4)
    first = gate.acquire(0)
    assert first is not None
    held = [first]
    other_thread = threading.Thread(target=lambda: held.append(gate.acquire(0)))  # type: ignore[arg-type]
    other_thread.start()
    other_thread.join()
    assert held[1] is not None
    third: list[Any] = []
    thread = threading.Thread(target=lambda: third.append(gate.acquire(0)))
    thread.start()
    thread.join()
    assert third == [None]  # full: a third caller (another thread) times out at once
    held[0].release(congested=False, succeeded=True)  # demand was at the limit: grow
    assert gate.capacity() == 3


def acquire_elsewhere(gate: LocalGate, timeout: float | None = 0) -> Any:
    """Acquire from another thread (this one may already hold slots: re-entrant)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(gate.acquire(timeout)))
    thread.start()
    thread.join(10)
    return out[0]


def test_gate_congestion_drops_the_limit_and_leaves_slow_start() -> None:
    gate = LocalGate(initial_limit=3, probe_every=4)
    leases = [acquire_elsewhere(gate) for _ in range(3)]
    assert all(leases)
    assert leases[0].release(congested=True, succeeded=False) == (2, False)
    assert gate.capacity() == 2
    assert not gate.slow_start


def test_gate_probes_up_slowly_after_congestion() -> None:
    gate = LocalGate(initial_limit=4, probe_every=2)
    leases = [acquire_elsewhere(gate) for _ in range(4)]
    leases.pop().release(congested=True, succeeded=False)  # limit -> 3
    assert gate.capacity() == 3
    grown_after = 0
    for n in range(1, 20):
        leases.pop(0).release(congested=False, succeeded=True)
        leases.append(acquire_elsewhere(gate))
        if gate.capacity() == 4:
            grown_after = n
            break
    assert grown_after == 2 * 3  # probe_every rounds of a full window


def test_gate_respects_cap_and_does_not_grow_past_it() -> None:
    gate = LocalGate(initial_limit=10, probe_every=4, cap=2)
    assert gate.capacity() == 2
    for _ in range(20):
        a, b = acquire_elsewhere(gate), acquire_elsewhere(gate)
        a.release(congested=False, succeeded=True)
        b.release(congested=False, succeeded=True)
    assert gate.limit == 2  # no hidden growth to burst with once the cap is lifted


def test_instances_with_different_caps_do_not_share_a_gate() -> None:
    call = Call(model="m", base_url=URL)
    capped, free = limiter(1).gate(call), limiter().gate(call)
    assert capped is not free
    assert capped is limiter(1).gate(call)


def test_gate_hands_slots_to_threads_in_order() -> None:
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    lease = gate.acquire(None)
    assert lease is not None
    order: list[int] = []
    queued = threading.Semaphore(0)

    def worker(n: int) -> None:
        queued.release()
        got = gate.acquire(5)
        assert got is not None
        order.append(n)
        got.release(congested=False, succeeded=True)

    threads = []
    for n in range(3):
        thread = threading.Thread(target=worker, args=(n,))
        thread.start()
        queued.acquire()
        while len(gate._waiters) < n + 1:  # queued in a known order, whatever the load
            time.sleep(0.001)
        threads.append(thread)
    lease.release(congested=False, succeeded=True)
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2]
    assert gate.in_flight == 0


async def test_gate_serves_coroutines_and_threads_alike() -> None:
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    lease = acquire_elsewhere(gate, None)
    waiter = asyncio.create_task(gate.aacquire(5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    threading.Thread(target=lease.release, kwargs={"congested": False, "succeeded": True}).start()
    assert await asyncio.wait_for(waiter, 5) is not None
    assert gate.in_flight == 1


async def test_gate_async_timeout_and_cancel_leave_no_leak() -> None:
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    lease = acquire_elsewhere(gate, None)
    assert await gate.aacquire(0.01) is None
    task = asyncio.create_task(gate.aacquire(None))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lease.release(congested=False, succeeded=True)
    assert gate.in_flight == 0
    assert await gate.aacquire(0) is not None


def test_a_holder_gets_another_slot_at_once() -> None:
    """Re-entrant: three streams zipped in one thread, or a callback calling the model."""
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    first = gate.acquire(None)
    second = gate.acquire(0)  # this thread holds one: no wait, no deadlock
    assert first is not None and second is not None
    assert acquire_elsewhere(gate) is None  # another thread still waits its turn


def test_a_stream_nobody_reads_does_not_hold_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_state, "IDLE_AFTER", 0.05)
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    lease = acquire_elsewhere(gate, None)
    lease.progress(reading=False)  # a chunk was handed over; nobody asks for the next
    assert acquire_elsewhere(gate, 5) is not None  # granted once the stream is idle
    assert gate.in_flight == 2


def test_a_stream_being_read_keeps_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_state, "IDLE_AFTER", 0.05)
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    lease = acquire_elsewhere(gate, None)
    lease.progress(reading=True)  # the reader waits for the server's next chunk
    assert acquire_elsewhere(gate, 0.2) is None


def test_a_stalled_queue_lets_its_head_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """No finish, no progress, no deadline: the wait still ends (no call waits forever)."""
    monkeypatch.setattr(_state, "STALL_AFTER", 0.1)
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    assert acquire_elsewhere(gate, None) is not None  # held forever by a hung request
    assert acquire_elsewhere(gate, None) is not None


def test_limiter_holds_slot_until_answer_consumed() -> None:
    policy = limiter(1)
    call = Call(model="m", base_url=URL)
    gate = policy.gate(call)
    assert isinstance(gate, LocalGate)
    result, finish = run(compose([policy])(call), lambda c: "answer", lambda e: None)
    assert result == "answer"
    assert gate.in_flight == 1  # still streaming
    finish("m", None)
    assert gate.in_flight == 0


def test_limiter_timeout_is_a_deadline_error() -> None:
    policy = limiter(1)
    call = Call(model="m", base_url=URL)
    assert acquire_elsewhere(policy.gate(call), None) is not None  # type: ignore[arg-type]
    driver = Driver({})
    with pytest.raises(errors.WBDeadlineExceededError):
        driver.run([policy], model="m", deadline=time.monotonic() + 0.05)
    assert driver.sends == []


def test_concurrency_429_lowers_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "REQUEUES", 0)  # the three others here never finish
    policy = limiter()
    gate = policy.gate(Call(model="m", base_url=URL))
    assert isinstance(gate, LocalGate)
    gate.limit = 8.0
    for _ in range(3):
        acquire_elsewhere(gate)  # three others in flight
    driver = Driver({"m": [lambda: status_error(429, CONCURRENCY)]})
    with pytest.raises(errors.WBConcurrencyLimitError):
        driver.run([policy], model="m")
    assert gate.capacity() == 3


def test_429_among_our_own_requests_waits_for_a_slot_not_a_backoff() -> None:
    """Deterministic: the other request finishes only once ours was sent back to the queue."""
    policy = limiter()
    gate = policy.gate(Call(model="m", base_url=URL))
    assert isinstance(gate, LocalGate)
    gate.limit = 2.0
    other = acquire_elsewhere(gate)  # one of ours already in flight
    requeued = threading.Event()

    def busy() -> BaseException:
        def finish_other() -> None:
            while not gate._waiters:  # wait until ours is queued again, however slow
                time.sleep(0.001)
            requeued.set()
            other.release(congested=False, succeeded=True)

        threading.Thread(target=finish_other).start()
        return status_error(429, CONCURRENCY)

    driver = Driver({"m": [busy, "answer"]})
    assert driver.run([FAST, policy], model="m") == "answer"
    assert requeued.is_set()
    assert driver.sends == ["m", "m"]
    assert driver.sleeps == []  # no backoff: waiting for our own slot was the backoff
    assert gate.limit == 1.0  # the limit dropped to what the service carried


def test_429_with_nothing_else_in_flight_goes_to_the_retry_policy() -> None:
    busy = lambda: status_error(429, CONCURRENCY)  # noqa: E731
    driver = Driver({"m": [busy, "answer"]})
    assert driver.run([FAST, limiter()], model="m") == "answer"
    assert driver.sleeps == [1.0]


def contend(gate: LocalGate) -> None:
    """Leave ``gate`` contended but empty: one request had to queue behind others."""
    holders = [acquire_elsewhere(gate, None) for _ in range(gate.capacity())]
    queued = threading.Thread(
        target=lambda: gate.acquire(10).release(congested=False, succeeded=True)  # type: ignore[union-attr]
    )
    queued.start()
    while not gate._waiters:  # queued, however slow the machine
        time.sleep(0.001)
    for holder in holders:
        holder.release(congested=False, succeeded=False)
    queued.join(10)
    assert gate.in_flight == 0 and not gate._waiters


def test_gate_reports_contention() -> None:
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    assert acquire_elsewhere(gate).release(congested=True, succeeded=False) == (0, False)
    contend(gate)
    assert acquire_elsewhere(gate).release(congested=True, succeeded=False) == (0, True)


def test_gate_contention_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_state, "CONTENDED_FOR", 0.0)
    gate = LocalGate(initial_limit=1, probe_every=4, cap=1)
    contend(gate)
    assert acquire_elsewhere(gate).release(congested=True, succeeded=False) == (0, False)


def test_429_under_contention_backs_off_and_keeps_its_attempt() -> None:
    """Nobody of ours in flight, but requests queued lately: someone else holds the slots."""
    policy = limiter()
    gate = policy.gate(Call(model="m", base_url=URL))
    assert isinstance(gate, LocalGate)
    contend(gate)
    busy = lambda: status_error(429, CONCURRENCY)  # noqa: E731
    driver = Driver({"m": [busy, busy, "answer"]})
    assert driver.run([FAST, policy], model="m") == "answer"
    assert driver.sends == ["m", "m", "m"]
    assert [e.name for e in driver.events] == []  # no retry attempt was spent
    bounds = [concurrency.BACKOFF, 2 * concurrency.BACKOFF]
    assert len(driver.sleeps) == 2
    assert all(0 <= slept <= bound for slept, bound in zip(driver.sleeps, bounds, strict=True))


def test_patience_is_bounded_by_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "REQUEUES", 2)
    policy = limiter()
    gate = policy.gate(Call(model="m", base_url=URL))
    assert isinstance(gate, LocalGate)
    contend(gate)
    driver = Driver({"m": [lambda: status_error(429, CONCURRENCY)]})
    with pytest.raises(errors.WBConcurrencyLimitError):
        driver.run([FAST, policy], model="m")
    assert driver.sends == ["m"] * 3 * 3  # 3 attempts, each sent back to the queue twice
    assert [e.name for e in driver.events] == ["retry", "retry"]


def test_patience_is_bounded_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "PATIENCE", 0.0)
    policy = limiter()
    gate = policy.gate(Call(model="m", base_url=URL))
    assert isinstance(gate, LocalGate)
    contend(gate)
    driver = Driver({"m": [lambda: status_error(429, CONCURRENCY), "answer"]})
    assert driver.run([FAST, policy], model="m") == "answer"
    assert driver.sleeps == [1.0]  # the retry policy's backoff: patience was used up


def test_patience_never_overruns_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "BACKOFF", 100.0)
    monkeypatch.setattr(concurrency, "MAX_BACKOFF", 100.0)
    monkeypatch.setattr(concurrency, "PATIENCE", 1000.0)
    monkeypatch.setattr(concurrency.random, "uniform", lambda low, high: high)
    policy = limiter()
    gate = policy.gate(Call(model="m", base_url=URL))
    assert isinstance(gate, LocalGate)
    contend(gate)
    driver = Driver({"m": [lambda: status_error(429, CONCURRENCY), "answer"]})
    assert driver.run([policy], model="m") == "answer"
    assert driver.sleeps == [100.0]  # without a deadline: the backoff
    driver.sleeps.clear()
    contend(gate)
    driver = Driver({"m": [lambda: status_error(429, CONCURRENCY), "answer"]})
    with pytest.raises(errors.WBConcurrencyLimitError):
        driver.run([policy], model="m", deadline=time.monotonic() + 30)
    assert driver.sleeps == []  # a 100 s backoff does not fit in 30 s: the 429 is raised


def test_state_is_fresh_after_fork() -> None:
    """The child of a fork starts with no gates, circuits or reservations of its parent."""
    import os

    gate = limiter().gate(Call(model="m", base_url=URL))
    assert acquire_elsewhere(gate) is not None  # type: ignore[arg-type]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report how many requests its gate believes are in flight
        child_gate = limiter().gate(Call(model="m", base_url=URL))
        os.write(write, str(child_gate.in_flight).encode())  # type: ignore[attr-defined]
        os._exit(0)
    os.close(write)
    reported = os.read(read, 16)
    os.waitpid(pid, 0)
    assert reported == b"0"
    assert gate.in_flight == 1  # type: ignore[attr-defined]


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
