"""The fleet state against a real Redis, in one process: the gate's rules, the circuit's
window, failures of Redis (calls go on), secrets, and what is left in Redis.

Two coordinators on one Redis stand for two processes where only Redis matters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from langchain_core.load import dumpd

from langchain_wandb_inference import Budget
from langchain_wandb_inference.policies import _redis, _state
from langchain_wandb_inference.policies._circuit_breaker import CircuitBreaker
from langchain_wandb_inference.policies._state import Admission, LocalLedger, LocalState
from langchain_wandb_inference.testing import Emulator
from langchain_wandb_inference.testing.redis_server import RedisServer
from tests.fleet_tests.workers import MODEL, model

LONG = 60.0
KEY = ("https://api.example/v1", "team/project", MODEL, 1)


def eventually(check: Callable[[], Any], timeout: float = LONG) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)
    return value


def in_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in another thread (this one may hold slots: re-entrant)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(LONG)
    return out[0]


@pytest.fixture
def fleet(redis_server: RedisServer) -> _redis.FleetState:
    return _redis.state_for(redis_server.url)


@pytest.fixture
def elsewhere(redis_server: RedisServer) -> Iterator[_redis.FleetState]:
    """Another process's view of the same Redis."""
    state = _redis.FleetState(_redis.Coordinator(redis_server.url), LocalState())
    yield state
    state.coordinator.close()


def fleet_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "langchain_wandb_inference.fleet" and r.levelno >= logging.WARNING
    ]


# -- the gate ---------------------------------------------------------------------------


def test_one_cap_for_both_processes(fleet: _redis.FleetState, elsewhere: _redis.FleetState) -> None:
    mine, theirs = fleet.gate(KEY, 2, 4, 1), elsewhere.gate(KEY, 2, 4, 1)
    lease = in_thread(lambda: mine.acquire(0))
    assert lease is not None
    assert in_thread(lambda: theirs.acquire(0)) is None
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(theirs.acquire(LONG)))
    waiter.start()
    eventually(lambda: elsewhere.coordinator.agent._watching())
    lease.release(congested=False, succeeded=True)  # the waiter elsewhere is woken
    waiter.join(LONG)
    assert got[0] is not None and isinstance(got[0], _redis.FleetLease)
    got[0].release(congested=False, succeeded=True)


def test_waiters_are_served_in_order_across_processes(
    fleet: _redis.FleetState, elsewhere: _redis.FleetState
) -> None:
    gates = [fleet.gate(KEY, 2, 4, 1), elsewhere.gate(KEY, 2, 4, 1)]
    held = in_thread(lambda: gates[0].acquire(0))
    order: list[int] = []

    def waiter(n: int) -> None:
        lease = gates[n % 2].acquire(LONG)
        order.append(n)
        lease.release(congested=False, succeeded=True)

    threads = []
    client = redis.Redis.from_url(fleet.coordinator._url)
    for n in range(4):
        threads.append(threading.Thread(target=waiter, args=(n,)))
        threads[-1].start()
        eventually(lambda n=n: client.zcard(gates[0].keys[2]) == n + 1)  # queued in order
    held.release(congested=False, succeeded=True)
    for thread in threads:
        thread.join(LONG)
    assert order == [0, 1, 2, 3]


async def test_threads_and_tasks_share_the_fleet_slots(fleet: _redis.FleetState) -> None:
    gate = fleet.gate((*KEY[:3], 2), 2, 4, 2)
    inside, peak, lock = [0], [0], threading.Lock()

    def enter(delta: int) -> None:
        with lock:
            inside[0] += delta
            peak[0] = max(peak[0], inside[0])

    def sync_worker() -> None:
        for _ in range(10):
            lease = gate.acquire(LONG)
            assert isinstance(lease, _redis.FleetLease)
            enter(1)
            time.sleep(0.005)
            enter(-1)
            lease.release(congested=False, succeeded=True)

    async def async_worker() -> None:
        for _ in range(10):
            lease = await gate.aacquire(LONG)
            assert isinstance(lease, _redis.FleetLease)
            enter(1)
            await asyncio.sleep(0.005)
            enter(-1)
            await lease.arelease(congested=False, succeeded=True)

    threads = [threading.Thread(target=sync_worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(async_worker() for _ in range(3)))
    await asyncio.to_thread(lambda: [t.join(LONG) for t in threads])
    assert peak[0] == 2


async def test_a_cancelled_or_timed_out_waiter_leaks_nothing(fleet: _redis.FleetState) -> None:
    gate = fleet.gate(KEY, 2, 4, 1)
    lease = await asyncio.to_thread(gate.acquire, 0)
    assert lease is not None
    assert await gate.aacquire(0.05) is None
    task = asyncio.create_task(gate.aacquire(None))
    await asyncio.to_thread(eventually, fleet.coordinator.agent._watching)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await lease.arelease(congested=False, succeeded=True)
    client = redis.Redis.from_url(fleet.coordinator._url)
    assert client.zcard(gate.keys[0]) == 0 and client.zcard(gate.keys[2]) == 0
    again = await gate.aacquire(0)
    assert again is not None


def test_a_holder_gets_another_slot_at_once(
    fleet: _redis.FleetState, elsewhere: _redis.FleetState
) -> None:
    """Re-entrant: counted by the fleet (over the cap), so others still wait."""
    gate = fleet.gate(KEY, 2, 4, 1)
    first, second = gate.acquire(None), gate.acquire(0)
    assert first is not None and second is not None
    assert in_thread(lambda: gate.acquire(0)) is None
    assert elsewhere.gate(KEY, 2, 4, 1).acquire(0) is None
    client = redis.Redis.from_url(fleet.coordinator._url)
    assert client.zcard(gate.keys[0]) == 2


def test_an_idle_stream_lends_its_slot_to_its_own_process_only(
    fleet: _redis.FleetState, elsewhere: _redis.FleetState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_state, "IDLE_AFTER", 0.05)
    gate = fleet.gate(KEY, 2, 4, 1)
    stream = in_thread(lambda: gate.acquire(None))
    stream.progress(reading=False)  # a chunk was handed over; nobody asks for the next
    lent = in_thread(lambda: gate.acquire(LONG))
    assert isinstance(lent, _redis.FleetLease) and lent.lent
    assert elsewhere.gate(KEY, 2, 4, 1).acquire(0.2) is None  # the service still holds it


def test_a_stalled_queue_lets_its_head_through(
    fleet: _redis.FleetState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No finish, no delivery anywhere: the wait still ends (no call waits forever)."""
    monkeypatch.setattr(_state, "STALL_AFTER", 0.5)
    gate = fleet.gate(KEY, 2, 4, 1)
    assert in_thread(lambda: gate.acquire(None)) is not None  # held by a hung request
    assert in_thread(lambda: gate.acquire(LONG)) is not None


def test_a_lost_ticket_goes_back_to_the_front(
    fleet: _redis.FleetState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiter whose ticket expired (its process stalled) is queued again, not lost."""
    gate = fleet.gate(KEY, 2, 4, 1)
    held = in_thread(lambda: gate.acquire(None))
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(gate.acquire(LONG)))
    waiter.start()
    client = redis.Redis.from_url(fleet.coordinator._url)
    eventually(lambda: client.zcard(gate.keys[2]) == 1)
    client.delete(gate.keys[2], gate.keys[3])  # its ticket is gone
    held.release(congested=False, succeeded=True)
    waiter.join(LONG)
    assert got[0] is not None


def test_the_limit_adapts_fleet_wide(
    fleet: _redis.FleetState, elsewhere: _redis.FleetState
) -> None:
    key = (*KEY[:3], None)
    gate = fleet.gate(key, 3, 4, None)
    leases = [in_thread(lambda: gate.acquire(0)) for _ in range(3)]
    assert all(leases)
    assert leases[0].release(congested=True, succeeded=False) == (2, False)
    assert elsewhere.gate(key, 3, 4, None).capacity() == 2  # the other process sees it


def test_a_lease_nobody_renews_expires(
    fleet: _redis.FleetState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis, "LEASE_TTL", 3.0)
    gate = fleet.gate(KEY, 2, 4, 1)
    kept = in_thread(lambda: gate.acquire(None))
    time.sleep(4)  # longer than the lease time: the agent renewed it
    assert in_thread(lambda: gate.acquire(0)) is None
    fleet.coordinator.agent.drop(gate, kept)  # as if its process stopped renewing
    assert in_thread(lambda: gate.acquire(LONG)) is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_uses_its_own_connections(fleet: _redis.FleetState) -> None:
    gate = fleet.gate(KEY, 2, 4, 1)
    lease = in_thread(lambda: gate.acquire(None))
    process = fleet.coordinator.process
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh process id, the slot still the parent's
        child = _redis.state_for(fleet.coordinator._url)
        mine = child.gate(KEY, 2, 4, 1)
        report = f"{child.coordinator.process != process} {mine.acquire(0) is None}"
        os.write(write, report.encode())
        os._exit(0)
    os.close(write)
    reported = os.read(read, 64)
    os.waitpid(pid, 0)
    assert reported == b"True True"
    lease.release(congested=False, succeeded=True)


# -- the circuit ------------------------------------------------------------------------


def kind(admission: Admission | float) -> str:
    return admission.kind if isinstance(admission, Admission) else "refused"


def test_the_circuit_window_dedupes_calls_and_requests(
    fleet: _redis.FleetState, elsewhere: _redis.FleetState
) -> None:
    settings = CircuitBreaker(minimum_calls=2, window=2, cooldown=600).settings
    mine, theirs = fleet.circuit(("u", "m")), elsewhere.circuit(("u", "m"))
    closed = mine.admit(settings, True)
    assert isinstance(closed, Admission) and closed.kind == "closed"
    mine.record(settings, closed, "call-1", "prompt-a", "failure")
    mine.record(settings, closed, "call-1", "prompt-a", "failure")  # a retry: the same call
    theirs.record(settings, closed, "call-2", "prompt-a", "failure")  # the same request
    assert kind(theirs.admit(settings, True)) == "closed"  # one failure in the window
    theirs.record(settings, closed, "call-3", "prompt-b", "failure")  # another request
    refused = mine.admit(settings, True)
    assert isinstance(refused, float) and 0 < refused <= 600
    assert kind(mine.admit(settings, False)) == "forced"  # no fallback: sent anyway


def test_a_probe_that_never_reports_frees_its_permit(
    fleet: _redis.FleetState, elsewhere: _redis.FleetState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis, "LEASE_TTL", 1.0)
    settings = CircuitBreaker(minimum_calls=1, window=1, cooldown=0.1).settings
    mine, theirs = fleet.circuit(("u", "p")), elsewhere.circuit(("u", "p"))
    closed = mine.admit(settings, True)
    assert isinstance(closed, _redis.FleetAdmission)
    mine.record(settings, closed, "c1", "f1", "failure")
    probe = eventually(lambda: isinstance(a := mine.admit(settings, True), Admission) and a)
    assert probe.kind == "probe"
    assert isinstance(theirs.admit(settings, True), float)  # one probe at a time
    second = eventually(lambda: isinstance(a := theirs.admit(settings, True), Admission) and a)
    assert second.kind == "probe"  # the first prober died without a verdict
    theirs.record(settings, second, "c2", "f2", "success")
    assert kind(mine.admit(settings, True)) == "closed"


# -- Redis failing ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["batch", "abatch"])
def test_redis_killed_mid_batch_calls_go_on_and_come_back(
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    monkeypatch.setattr(_redis, "RECONNECT_INTERVAL", 0.2)
    caplog.set_level(logging.INFO, logger="langchain_wandb_inference.fleet")
    with Emulator(latency=0.05, concurrency_limit=4) as emu:
        llm = model(emu.base_url, redis_server.url)
        prompts = [f"prompt {i}" for i in range(40)]
        out: list[Any] = []

        def run() -> None:
            if method == "abatch":
                out.extend(asyncio.run(llm.abatch(prompts, return_exceptions=True)))
            else:
                out.extend(llm.batch(prompts, return_exceptions=True))

        thread = threading.Thread(target=run)
        thread.start()
        eventually(lambda: emu.count() >= 8)
        redis_server.kill()
        thread.join(LONG)
        assert [r for r in out if isinstance(r, BaseException)] == []
        assert len(out) == 40
        assert len(fleet_warnings(caplog)) == 1  # warned once
        redis_server.start()  # back, empty
        client = redis.Redis.from_url(redis_server.url)

        def back() -> bool:
            llm.invoke("after the outage")
            return any(client.scan_iter("wbinf:{gate:*"))

        eventually(back)
    assert any("is back" in r.getMessage() for r in caplog.records)


def test_redis_unreachable_from_the_start(caplog: pytest.LogCaptureFixture, tmp_path: Any) -> None:
    server = RedisServer(tmp_path)  # never started: nothing listens on its port
    with Emulator() as emu:
        llm = model(emu.base_url, server.url, budget=Budget(1.0, name="b"))
        assert llm.invoke("hello").content
        assert [c.text for c in llm.stream("hello")]
        assert asyncio.run(llm.ainvoke("hello")).content
    assert len(fleet_warnings(caplog)) == 1
    assert llm.budget is not None and llm.budget.spent_usd > 0  # counted in-process


def test_redis_hanging_calls_go_on(redis_server: RedisServer) -> None:
    with Emulator() as emu:
        llm = model(emu.base_url, redis_server.url)
        assert llm.invoke("before").content
        redis_server.pause()  # a black hole: every Redis call times out
        try:
            assert llm.invoke("during").content
            assert asyncio.run(llm.ainvoke("during")).content
        finally:
            redis_server.resume()


def test_a_budget_falls_back_to_its_own_ledger(
    fleet: _redis.FleetState, redis_server: RedisServer
) -> None:
    local = LocalLedger()
    ledger = fleet.ledger("b", local)
    assert ledger.reserve(1.0, 10.0) is None  # held in Redis
    redis_server.kill()
    assert ledger.reserve(2.0, 10.0) is None  # held in the fallback
    assert local.view().in_flight == 1
    assert ledger.settle(2.0, 0.5) == 0.5  # the fallback's own
    assert ledger.settle(1.0, 0.25) == 0.75  # Redis is gone: counted here at least
    assert ledger.view() == local.view()


# -- secrets and keys -------------------------------------------------------------------

PASSWORD = "s3cret-redis-passw0rd-for-tests"


def test_the_redis_password_never_shows(
    tmp_path: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis, "RECONNECT_INTERVAL", 0.1)
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-passw0rd-not-the-real-one"
    with RedisServer(tmp_path, password=PASSWORD) as server, Emulator() as emu:
        bad = model(emu.base_url, server.url.replace(PASSWORD, wrong))
        assert bad.invoke("hello").content  # NOAUTH/WRONGPASS: falls back, answers
        good = model(emu.base_url, server.url)
        assert good.invoke("hello").content
        client = redis.Redis.from_url(server.url)
        assert any(client.scan_iter("wbinf:*"))  # the right password: shared state
        server.kill()  # and lost mid-run
        assert good.invoke("hello again").content
        shown = [repr(good), str(good), json.dumps(dumpd(good)), json.dumps(good.to_json())]
    shown += [r.getMessage() for r in caplog.records]
    shown += [str(r.exc_info) for r in caplog.records if r.exc_info]
    assert fleet_warnings(caplog)  # the failures were reported...
    for text in shown:
        assert PASSWORD not in text and wrong not in text  # ...without the password
    assert "WANDB_INFERENCE_REDIS_URL" in json.dumps(dumpd(good))  # a reference, not the URL


def test_a_malformed_url_error_does_not_quote_it() -> None:
    with pytest.raises(ValueError, match="not a valid Redis URL") as info:
        model("http://127.0.0.1:9/v1", f"redis://:{PASSWORD}@127.0.0.1:notaport/0")
    assert PASSWORD not in str(info.value)


def test_every_key_is_namespaced_and_expires(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis, "LEASE_TTL", 1.0)
    with Emulator(latency=0.05, concurrency_limit=2) as emu:
        llm = model(emu.base_url, redis_server.url, budget=Budget(1.0, name="run"))
        assert all(not isinstance(r, Exception) for r in llm.batch(["a", "b", "c", "d"]))
        stream = llm.stream("held while we look")
        next(stream)
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        keys = list(client.scan_iter("*"))
        assert keys and all(k.startswith("wbinf:") for k in keys)
        assert all(client.pttl(k) > 0 for k in keys)  # -1 would be a key that never expires
        stream.close()

        def documented() -> list[str]:
            return sorted(
                k.split("{")[1].split(":")[0] + ":" + k.rsplit(":", 1)[1]
                for k in client.scan_iter("*")
            )

        # leases, queues, reservations expire within their lease time; what stays:
        eventually(lambda: documented() == ["budget:state", "circuit:window", "gate:state"])
