"""Worker processes sharing one Redis: one limit, one circuit, one budget, dead workers.

The emulator runs in this process and counts what the fleet really sent.  Nothing
here depends on the machine being fast: workers start together on an event, waits
are for events or ``eventually`` with a deadline no healthy run gets near.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from langchain_wandb_inference import Budget, errors
from langchain_wandb_inference.policies import _redis
from langchain_wandb_inference.policies._state import LocalLedger
from langchain_wandb_inference.testing import Emulator, Fault
from langchain_wandb_inference.testing.redis_server import RedisServer
from tests.fleet_tests import workers
from tests.fleet_tests.workers import MODEL, OTHER

SPAWN = mp.get_context("spawn")
LONG = 120.0  # seconds: a bound no healthy run gets near


def start_together(target: Callable[..., None], n: int, *args: Any) -> tuple[list[Any], Any]:
    """Start ``n`` workers running ``target(*args, ready, go, out)``; go once all are ready."""
    ready, go, out = SPAWN.Semaphore(0), SPAWN.Event(), SPAWN.Queue()
    procs = [SPAWN.Process(target=target, args=(*args, ready, go, out)) for _ in range(n)]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + LONG
    for _ in procs:
        while not ready.acquire(timeout=0.5):  # a worker that died says so at once
            assert all(p.exitcode is None for p in procs), "a worker exited early"
            assert time.monotonic() < deadline
    go.set()
    results = [out.get(timeout=LONG) for _ in procs]
    for proc in procs:
        proc.join(LONG)
        assert proc.exitcode == 0
    return results, out


def test_processes_keep_one_cap_between_them(redis_server: RedisServer) -> None:
    """4 processes, max_concurrency=2: at most 2 in flight at the service, not 2 each."""
    with Emulator(latency=0.1) as emu:
        results, _ = start_together(workers.batch, 4, emu.base_url, redis_server.url, 6, 2, "batch")
        assert results == [[]] * 4  # every item answered
        assert emu.max_in_flight_seen[MODEL] == 2
        assert emu.count(status=429) == 0


@pytest.mark.parametrize("method", ["batch", "abatch"])
def test_processes_learn_one_limit_between_them(redis_server: RedisServer, method: str) -> None:
    """4 processes against a 4-in-flight limit: few 429s (each alone would send dozens)."""
    with Emulator(latency=0.1, concurrency_limit=4) as emu:
        results, _ = start_together(
            workers.batch, 4, emu.base_url, redis_server.url, 12, None, method
        )
        assert results == [[]] * 4
        assert emu.count(status=429) < 4 * 4


def test_processes_without_redis_lose_no_items() -> None:
    """Per-process mode overrunning the limit: many 429s, but every item is answered.

    (Before 429s under contention were retried patiently, 17-19 of these 48 failed.)
    """
    with Emulator(latency=0.1, concurrency_limit=1) as emu:
        results, _ = start_together(workers.batch, 4, emu.base_url, None, 12, None, "batch")
        assert results == [[]] * 4
        assert emu.count(status=429) > 0  # they did overrun it


def test_a_sigkilled_workers_slot_comes_back(redis_server: RedisServer) -> None:
    with Emulator() as emu:
        ready = SPAWN.Event()
        child = SPAWN.Process(
            target=workers.hold_a_stream, args=(emu.base_url, redis_server.url, 2.0, ready)
        )
        child.start()
        assert ready.wait(LONG)
        gate = _redis.state_for(redis_server.url).gate((emu.base_url, None, MODEL, 1), 2, 4, 1)
        assert gate.acquire(0) is None  # the child's stream holds the only slot
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join()
        lease = gate.acquire(LONG)  # back once the dead child's lease expired
        assert lease is not None
        lease.release(congested=False, succeeded=True)
        llm = workers.model(emu.base_url, redis_server.url, max_concurrency=1)
        assert llm.invoke("hello").content


def test_a_named_budget_is_one_budget_for_all_processes(redis_server: RedisServer) -> None:
    with Emulator() as emu:
        probe = Budget(1.0)
        workers.model(emu.base_url, None, budget=probe).invoke("The same prompt every time.")
        limit = 20 * probe.spent_usd  # room for several calls (each reserves more: its floor)
        alone = workers.model(emu.base_url, None, budget=Budget(limit))
        affordable = 0
        while True:
            try:
                alone.invoke("The same prompt every time.")
            except errors.WBBudgetExceededError:
                break
            affordable += 1
        assert affordable >= 2
        results, _ = start_together(workers.spend, 4, emu.base_url, redis_server.url, limit, 50)
    answered = sum(results)
    assert 1 <= answered <= affordable  # not 4 x affordable: the four shared one budget
    view = Budget(limit, name="nightly-eval").ledger_in(_redis.state_for(redis_server.url)).view()
    assert 0 < view.spent < limit
    assert (view.reserved, view.in_flight) == (0, 0)


def test_the_circuit_is_the_fleets(redis_server: RedisServer) -> None:
    """Failures seen by one process open the circuit for the others."""
    with Emulator() as emu:
        emu.always(MODEL, Fault.server_error())
        out = SPAWN.Queue()
        child = SPAWN.Process(
            target=workers.fail_calls,
            args=(emu.base_url, redis_server.url, ["first prompt", "second prompt"], out),
        )
        child.start()
        assert out.get(timeout=LONG) == ["WBServerError", "WBServerError"]
        child.join(LONG)
        sent = emu.count(model=MODEL)
        breaker = workers.CircuitBreaker(minimum_calls=2, window=2, cooldown=600)
        llm = workers.model(
            emu.base_url, redis_server.url, circuit_breaker=breaker, fallback_models=[OTHER]
        )
        answer = llm.invoke("a third prompt")
        assert answer.response_metadata["model_name"] == OTHER
        assert emu.count(model=MODEL) == sent  # refused here without a request


def test_one_prompt_failing_in_many_processes_counts_once(redis_server: RedisServer) -> None:
    with Emulator() as emu:
        emu.always(MODEL, Fault.server_error())
        out = SPAWN.Queue()
        for _ in range(2):  # the same prompt, from two processes
            child = SPAWN.Process(
                target=workers.fail_calls,
                args=(emu.base_url, redis_server.url, ["one bad prompt"], out),
            )
            child.start()
            assert out.get(timeout=LONG) == ["WBServerError"]
            child.join(LONG)
        sent = emu.count(model=MODEL)
        breaker = workers.CircuitBreaker(minimum_calls=2, window=2, cooldown=600)
        llm = workers.model(
            emu.base_url, redis_server.url, circuit_breaker=breaker, fallback_models=[OTHER]
        )
        llm.invoke("another prompt")  # still closed: tried on the primary first
        assert emu.count(model=MODEL) == sent + 1


def test_the_learned_limit_outlives_its_worker(redis_server: RedisServer) -> None:
    with Emulator(latency=0.05, concurrency_limit=3) as emu:
        results, _ = start_together(
            workers.batch, 1, emu.base_url, redis_server.url, 24, None, "batch"
        )
        assert results == [[]]
        assert emu.count(status=429) >= 1  # the worker learnt the limit the hard way
        # a process joining later starts from it, not from slow start at 2
        gate = _redis.state_for(redis_server.url).gate(
            (emu.base_url, None, MODEL, None), 2, 4, None
        )
        assert gate.capacity() in (3, 4)  # 3, or probing one above it
        client = redis.Redis.from_url(redis_server.url)
        [state_key] = [k for k in client.scan_iter("wbinf:{gate:*:state")]
        assert client.pttl(state_key) > (_redis.LIMIT_TTL - 3600) * 1000


def test_a_reservation_of_a_dead_worker_is_released(redis_server: RedisServer) -> None:
    ready = SPAWN.Event()
    child = SPAWN.Process(target=workers.reserve_and_hang, args=(redis_server.url, 2.0, ready))
    child.start()
    assert ready.wait(LONG)
    ledger = _redis.state_for(redis_server.url).ledger("b", LocalLedger())
    assert ledger.reserve(2.0, 10.0) is not None  # the child holds 9 of 10
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join()
    eventually(lambda: ledger.reserve(2.0, 10.0) is None)  # its reservation expired
    assert ledger.settle(2.0, 1.5) == 1.5


def eventually(check: Callable[[], Any], timeout: float = LONG) -> Any:
    """Poll ``check`` until it is truthy (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)
    return value
