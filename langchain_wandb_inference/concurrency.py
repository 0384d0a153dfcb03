"""Adaptive concurrency limit: keep requests in flight near what W&B accepts.

W&B limits requests *in flight* per project, user and model (no number is
published; one model was seen at about one) and answers a 429 beyond it.  Sending a
large ``batch`` blind produces a storm of 429s and failed items.  This limiter keeps
one gate per (base URL, project, model), shared by every instance, thread and event
loop in the process:

* it starts at ``initial_limit`` and, while there is more work than slots, grows by
  one per success (slow start) until the first concurrency 429;
* on a concurrency 429 it drops to the number of requests still in flight — the
  load the service was actually carrying — and leaves slow start;
* after that it probes upwards slowly: one more slot after ``probe_every`` rounds of
  successes at full load, so a limit raised by W&B is found again;
* ``max_concurrency`` caps it.

A slot is held until the answer is consumed (a stream holds it until its last
chunk), released at once on failure.  Waiting for a slot counts against the call's
deadline.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx2

from langchain_wandb_inference.errors import (
    WBConcurrencyLimitError,
    WBDeadlineExceededError,
)
from langchain_wandb_inference.pipeline import Call, Plan, Step


class _Waiter:
    """Someone queued for a slot: a thread (Event) or a coroutine (Future on its loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self.event = threading.Event()
        self.granted = False

    def wake(self) -> None:
        """Tell the waiter its slot is granted (``granted`` was set under the gate's lock)."""
        if self.loop is None:
            self.event.set()
        else:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(None)


class Gate:
    """The shared in-flight counter and adaptive limit for one (URL, project, model)."""

    def __init__(self, initial_limit: int, probe_every: int, cap: int | None = None) -> None:
        self._lock = threading.Lock()
        self.limit = float(initial_limit if cap is None else min(initial_limit, cap))
        self.probe_every = probe_every
        self.cap = cap
        self.in_flight = 0
        self.slow_start = True
        self._streak = 0
        self._waiters: deque[_Waiter] = deque()

    def capacity(self) -> int:
        """Slots available now: the adaptive limit, under the cap, at least one."""
        limit = int(self.limit) if self.cap is None else min(int(self.limit), self.cap)
        return max(1, limit)

    def _enter_or_queue(
        self, loop: asyncio.AbstractEventLoop | None, front: bool
    ) -> _Waiter | None:
        with self._lock:
            if (front or not self._waiters) and self.in_flight < self.capacity():
                self.in_flight += 1
                return None
            waiter = _Waiter(loop)
            if front:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            return waiter

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter timed out or was cancelled: dequeue it, or give back its slot."""
        with self._lock:
            if not waiter.granted:
                self._waiters.remove(waiter)
                return
        self.release(congested=False, succeeded=False)

    def acquire(self, timeout: float | None, *, front: bool = False) -> bool:
        """Block until a slot is ours; ``False`` if ``timeout`` passed first.

        ``front`` puts the caller at the head of the queue (a request sent back after
        a 429 has already waited its turn once).
        """
        waiter = self._enter_or_queue(None, front)
        if waiter is None or waiter.event.wait(timeout):
            return True
        self._abandon(waiter)
        return False

    async def aacquire(self, timeout: float | None, *, front: bool = False) -> bool:
        """Await a slot without blocking the loop; ``False`` if ``timeout`` passed first."""
        waiter = self._enter_or_queue(asyncio.get_running_loop(), front)
        if waiter is None:
            return True
        assert waiter.future is not None
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except asyncio.TimeoutError:
            self._abandon(waiter)
            return False
        except BaseException:
            self._abandon(waiter)
            raise
        return True

    def release(self, *, congested: bool, succeeded: bool) -> int:
        """Give a slot back, adapt the limit, and hand freed slots to waiters.

        Returns how many of this process's requests were still in flight.
        """
        with self._lock:
            self.in_flight -= 1
            if congested:
                self.limit = float(max(1, min(int(self.limit), self.in_flight)))
                self.slow_start, self._streak = False, 0
            elif succeeded and (self._waiters or self.in_flight + 1 >= self.capacity()):
                self._grow()
            granted = []
            while self._waiters and self.in_flight < self.capacity():
                self.in_flight += 1
                waiter = self._waiters.popleft()
                waiter.granted = True
                granted.append(waiter)
            others = self.in_flight - len(granted)
        for waiter in granted:
            waiter.wake()
        return others

    def _grow(self) -> None:
        if self.cap is not None and self.limit >= self.cap:
            return  # at the cap: growing further would only burst past it once lifted
        if self.slow_start:
            self.limit += 1
            return
        self._streak += 1
        if self._streak >= self.probe_every * self.capacity():
            self.limit += 1
            self._streak = 0


def _release_after_answer(gate: Gate, _model: str, _usage: Mapping[str, Any] | None) -> None:
    """Finalizer: the answer was consumed, so its slot is free and it counts as a success."""
    gate.release(congested=False, succeeded=True)


REQUEUES = 3
"""How often one request may go back to the queue after a 429 before it counts as a failure."""

_registry_lock = threading.Lock()
_gates: dict[tuple[str, str | None, str, int | None], Gate] = {}


def reset_gates() -> None:
    """Forget every learned limit (test helper)."""
    with _registry_lock:
        _gates.clear()


@dataclass(frozen=True)
class Acquire:
    """Effect: wait for a slot of ``gate`` (or time out with the call's deadline)."""

    gate: Gate
    timeout: float | None
    url: str
    front: bool = False

    def run(self) -> None:
        """Block the thread until a slot is free."""
        if not self.gate.acquire(self.timeout, front=self.front):
            raise self._timed_out()

    async def arun(self) -> None:
        """Await a slot."""
        if not await self.gate.aacquire(self.timeout, front=self.front):
            raise self._timed_out()

    def _timed_out(self) -> WBDeadlineExceededError:
        message = (
            "No request slot became free before the call's deadline: this process already "
            f"has {self.gate.in_flight} request(s) in flight to this model, the most W&B "
            "accepted lately. Raise RetryPolicy.deadline, or send fewer calls at once."
        )
        return WBDeadlineExceededError(httpx2.Request("POST", self.url), message=message)


@dataclass(frozen=True)
class AdaptiveConcurrency:
    """Limit requests in flight per (base URL, project, model), adapting to 429s."""

    max_concurrency: int | None = None
    """Cap on requests in flight for one model through instances sharing this cap
    (``None``: only the adaptive limit)."""
    initial_limit: int = 2
    """Where slow start begins."""
    probe_every: int = 4
    """After the first 429: grow by one slot per this many full rounds of successes."""

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and self.max_concurrency < 1:
            msg = f"max_concurrency must be >= 1 or None (got {self.max_concurrency})."
            raise ValueError(msg)
        if self.initial_limit < 1 or self.probe_every < 1:
            msg = (
                "initial_limit and probe_every must be >= 1 "
                f"(got {self.initial_limit}, {self.probe_every})."
            )
            raise ValueError(msg)

    def gate(self, call: Call) -> Gate:
        """The process-wide gate for this call's (base URL, project, model, cap).

        The cap is part of the key, so an instance's ``max_concurrency`` holds even
        when another instance of the same model uses a different one.
        """
        key = (call.base_url, call.project, call.model, self.max_concurrency)
        with _registry_lock:
            gate = _gates.get(key)
            if gate is None:
                gate = _gates[key] = Gate(
                    self.initial_limit, self.probe_every, self.max_concurrency
                )
        return gate

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Hold a slot for the request; feed the outcome back into the limit.

        A concurrency 429 while other requests of this process are in flight means the
        service is full of *our* requests: the request goes back to the head of the
        queue and is sent when one of them finishes — that wait is the backoff, so it
        costs no retry attempt.  Alone (someone else holds the capacity), or after
        ``REQUEUES`` such returns, the 429 goes up to the retry policy.
        """
        gate = self.gate(call)
        url = call.base_url.rstrip("/") + "/chat/completions"
        requeues = 0
        while True:
            yield Acquire(gate, call.remaining(), url, front=requeues > 0)
            try:
                result = yield from proceed(call)
            except WBConcurrencyLimitError:
                others = gate.release(congested=True, succeeded=False)
                if not others or requeues >= REQUEUES:
                    raise
                requeues += 1
                continue
            except BaseException:
                gate.release(congested=False, succeeded=False)
                raise
            call.on_finish(partial(_release_after_answer, gate))
            return result
