"""Shared state of the policies: what every call in the process (or fleet) sees together.

Three things are shared, each behind a small interface with an in-process
implementation here (and a Redis one for fleets of processes, ``_redis``):

* a **gate** per (base URL, project, model, cap): the requests in flight and the
  adaptive concurrency limit, handing out leases (:class:`LocalGate`);
* a **circuit** per (base URL, model): the recent calls' outcomes and whether the model
  is skipped (:class:`LocalCircuit`);
* a **ledger** per budget: spend and reservations (:class:`LocalLedger`).

The policies decide (*when* to take a slot, what counts as a failure); the state keeps
the numbers and updates them atomically.  A :class:`State` hands out the gates,
circuits and ledgers: :data:`LOCAL` for this process, or a fleet's state, which the
policies cannot tell apart.  Every operation has an async twin (``a`` +
name) so that a state that does I/O never blocks an event loop; in-process ones just
take a lock that is never held across I/O.

After ``fork()`` the child starts from fresh gates, circuits and reservations: the
parent's requests in flight are not the child's (``os.register_at_fork``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, TypeVar

from langchain_wandb_inference.policies._pipeline import Finalizer, Usage

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

IDLE_AFTER = 1.0
"""A stream whose reader has not asked for more for this long no longer counts against
the concurrency limit (someone not reading a stream must not block other calls)."""
STALL_AFTER = 30.0
"""A request waits for a slot at most this long while no request of the gate finishes or
delivers anything; then it is sent anyway (no call waits forever)."""
CONTENDED_FOR = 60.0
"""A gate is *contended* while requests wait for a slot, and this many seconds after the
last one had to: more work than slots, so a 429 is the load's, not a lone request's."""


# --------------------------------------------------------------------------------------
# Interfaces
# --------------------------------------------------------------------------------------


class Others(NamedTuple):
    """Who else the gate served when a slot was given back: what a 429 is weighed by."""

    in_flight: int
    """Other requests still in flight (not counting those the release let in)."""
    contended: bool
    """Whether requests wait for a slot, or did within :data:`CONTENDED_FOR`."""


class Lease(Finalizer, Protocol):
    """A concurrency slot, held from sending until the answer is consumed (``finish``)."""

    def release(self, *, congested: bool, succeeded: bool) -> Others:
        """Give the slot back; returns who else is in flight, and whether there is contention."""
        ...

    async def arelease(self, *, congested: bool, succeeded: bool) -> Others:
        """Async twin of :meth:`release`."""
        ...


class Gate(Protocol):
    """Requests in flight and the adaptive limit, for one (base URL, project, model, cap)."""

    def acquire(self, timeout: float | None, front: bool) -> Lease | None:
        """Block until a slot is ours; ``None`` if ``timeout`` passed first."""
        ...

    async def aacquire(self, timeout: float | None, front: bool) -> Lease | None:
        """Await a slot; ``None`` if ``timeout`` passed first."""
        ...

    def capacity(self) -> int:
        """Slots available now."""
        ...


Outcome = Literal["success", "failure", "none"]


@dataclass(frozen=True)
class Admission:
    """How a call was let through a circuit: normally, as its probe, or sent regardless."""

    kind: Literal["closed", "probe", "forced"]


@dataclass(frozen=True)
class BreakerSettings:
    """What a circuit needs to know of its breaker (see ``CircuitBreaker``)."""

    failure_rate: float
    minimum_calls: int
    window: int
    cooldown: float
    probes: int


class Circuit(Protocol):
    """The recent outcomes of calls to one model at one base URL."""

    def admit(self, settings: BreakerSettings, refusable: bool) -> Admission | float:
        """An admission, or the seconds until a probe is let through (refused)."""
        ...

    async def aadmit(self, settings: BreakerSettings, refusable: bool) -> Admission | float:
        """Async twin of :meth:`admit`."""
        ...

    def record(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> None:
        """Note how one attempt of a call ended."""

    async def arecord(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> None:
        """Async twin of :meth:`record`."""


@dataclass(frozen=True)
class LedgerView:
    """A budget's numbers at one moment."""

    spent: float
    reserved: float
    in_flight: int


class Ledger(Protocol):
    """A budget's spend and the reservations of its calls in flight."""

    def reserve(self, floor: float, limit: float) -> LedgerView | None:
        """Hold ``floor`` if spent + reserved + floor stays under ``limit``; else the view."""
        ...

    async def areserve(self, floor: float, limit: float) -> LedgerView | None:
        """Async twin of :meth:`reserve`."""
        ...

    def settle(self, floor: float, cost: float) -> float:
        """Replace a reservation by the answer's ``cost``; returns the new spend."""
        ...

    async def asettle(self, floor: float, cost: float) -> float:
        """Async twin of :meth:`settle`."""
        ...

    def add(self, cost: float) -> float:
        """Add spend with no reservation (usage obtained outside the pipeline)."""
        ...

    def view(self) -> LedgerView:
        """The numbers now."""
        ...


class State(Protocol):
    """Where the policies find their gates, circuits and ledgers."""

    def gate(self, key: Hashable, initial_limit: int, probe_every: int, cap: int | None) -> Gate:
        """The gate for ``key`` (base URL, project, model, cap), made on first use."""
        ...

    def circuit(self, key: Hashable) -> Circuit:
        """The circuit for ``key`` (base URL, model)."""
        ...

    def ledger(self, name: str, local: LocalLedger) -> Ledger:
        """The ledger of the budget called ``name``, whose in-process ledger is ``local``."""
        ...


# --------------------------------------------------------------------------------------
# In-process gate
# --------------------------------------------------------------------------------------


_threads = threading.local()


def current_owner() -> Hashable:
    """Who is asking for a slot: this thread, and this asyncio task if any.

    A thread is named by an object only it holds (thread idents are reused as soon as a
    thread ends); a lease keeps its owner alive, so no later caller can pose as it.
    """
    token = getattr(_threads, "token", None)
    if token is None:
        token = _threads.token = object()
    loop = asyncio._get_running_loop()  # None outside a loop (no exception raised per call)
    return token, None if loop is None else asyncio.current_task(loop)


class Reading:
    """Whether a lease's stream is being read: what makes it idle (see :data:`IDLE_AFTER`)."""

    def __init__(self, owner: Hashable) -> None:
        self.owner = owner
        self.reading = True
        self.delivered_at: float | None = None

    def progress(self, reading: bool) -> None:
        """Note whether the reader is waiting for more (``False``: a chunk was handed over)."""
        self.reading = reading
        if not reading:
            self.delivered_at = time.monotonic()

    def idle(self, now: float) -> bool:
        """Whether nobody has asked this stream for more for :data:`IDLE_AFTER`."""
        return (
            not self.reading
            and self.delivered_at is not None
            and now - self.delivered_at >= IDLE_AFTER
        )

    def idle_at(self) -> float | None:
        """When the stream goes idle unless its reader asks for more (``None``: not soon)."""
        return None if self.delivered_at is None else self.delivered_at + IDLE_AFTER


class _LocalLease(Reading):
    """A slot of a :class:`LocalGate`; released once, by ``finish`` or ``release``."""

    def __init__(self, gate: LocalGate, owner: Hashable) -> None:
        super().__init__(owner)
        self.gate = gate
        self.released = False

    def progress(self, reading: bool) -> None:
        """Note the reader's progress; the gate is making progress too."""
        super().progress(reading)
        self.gate.touched()

    def release(self, *, congested: bool, succeeded: bool) -> Others:
        """Give the slot back (idempotent); returns who else is in flight, and contention."""
        return self.gate.release(self, congested=congested, succeeded=succeeded)

    async def arelease(self, *, congested: bool, succeeded: bool) -> Others:
        """Async twin of :meth:`release`."""
        return self.release(congested=congested, succeeded=succeeded)

    def finish(self, model: str, usage: Usage | None) -> None:
        """The answer was consumed: the slot is free and the request succeeded."""
        self.release(congested=False, succeeded=True)

    async def afinish(self, model: str, usage: Usage | None) -> None:
        """Async twin of :meth:`finish`."""
        self.finish(model, usage)


class _Waiter:
    """Someone queued for a slot: a thread (Event) or a coroutine (Future on its loop)."""

    def __init__(self, owner: Hashable, loop: asyncio.AbstractEventLoop | None) -> None:
        self.owner = owner
        self.loop = loop
        self.since = time.monotonic()
        self.future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self.event = threading.Event()
        self.lease: _LocalLease | None = None

    def wake(self) -> None:
        """Tell the waiter to look again (its lease is set, or a check is due)."""
        if self.loop is None:
            self.event.set()
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(None)


class LocalGate:
    """The in-process gate: leases, the adaptive limit, and a FIFO queue.

    The limit starts at ``initial_limit`` and, while there is more work than slots,
    grows by one per success (slow start) until the first concurrency 429; a 429 drops
    it to the requests still in flight (what the service actually carried); after that
    it probes upwards by one slot per ``probe_every`` full rounds of successes.
    ``cap`` bounds it.

    Nothing can wait forever: a thread or task that already holds a slot gets another at
    once (a stream being zipped with others, a callback calling the model mid-stream);
    a stream nobody reads (:data:`IDLE_AFTER`) does not count against the limit; and a
    queue that made no progress for :data:`STALL_AFTER` lets its head through.
    """

    def __init__(self, initial_limit: int, probe_every: int, cap: int | None = None) -> None:
        self._lock = threading.Lock()
        self.limit = float(initial_limit if cap is None else min(initial_limit, cap))
        self.probe_every = probe_every
        self.cap = cap
        self.slow_start = True
        self._streak = 0
        self._leases: list[_LocalLease] = []
        self._waiters: deque[_Waiter] = deque()
        self._progress_at = time.monotonic()
        self._queued_at = -math.inf

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        return len(self._leases)

    def capacity(self) -> int:
        """Slots available now: the adaptive limit, under the cap, at least one."""
        limit = int(self.limit) if self.cap is None else min(int(self.limit), self.cap)
        return max(1, limit)

    def touched(self) -> None:
        """A stream delivered or asked for more: the gate is making progress."""
        self._progress_at = time.monotonic()

    # -- taking a slot ----------------------------------------------------------------

    def acquire(self, timeout: float | None, front: bool = False) -> _LocalLease | None:
        """Block until a slot is ours; ``None`` if ``timeout`` passed first.

        ``front`` puts the caller at the head of the queue (a request sent back after a
        429 has already waited its turn once).
        """
        end = None if timeout is None else time.monotonic() + timeout
        waiter = self._enter_or_queue(current_owner(), None, front)
        if isinstance(waiter, _LocalLease):
            return waiter
        while True:
            waiter.event.wait(self._pause(end))
            waiter.event.clear()
            done, lease = self._settle_wait(waiter, end)
            if done:
                return lease

    async def aacquire(self, timeout: float | None, front: bool = False) -> _LocalLease | None:
        """Await a slot without blocking the loop; ``None`` if ``timeout`` passed first."""
        end = None if timeout is None else time.monotonic() + timeout
        waiter = self._enter_or_queue(current_owner(), asyncio.get_running_loop(), front)
        if isinstance(waiter, _LocalLease):
            return waiter
        try:
            while True:
                assert waiter.future is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter.future), self._pause(end))
                if waiter.future.done():
                    waiter.future = asyncio.get_running_loop().create_future()
                done, lease = self._settle_wait(waiter, end)
                if done:
                    return lease
        except BaseException:
            self._abandon(waiter)
            raise

    def _enter_or_queue(
        self, owner: Hashable, loop: asyncio.AbstractEventLoop | None, front: bool
    ) -> _LocalLease | _Waiter:
        with self._lock:
            now = time.monotonic()
            held = any(lease.owner == owner for lease in self._leases)
            if held or ((front or not self._waiters) and self._active(now) < self.capacity()):
                return self._grant(owner)
            waiter = _Waiter(owner, loop)
            self._queued_at = now
            if front:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            return waiter

    def _settle_wait(self, waiter: _Waiter, end: float | None) -> tuple[bool, _LocalLease | None]:
        """After a wake-up: done with the lease (or ``None``: timed out), or keep waiting."""
        with self._lock:
            self._promote(time.monotonic())
            if waiter.lease is not None:
                return True, waiter.lease
            if end is not None and time.monotonic() >= end:
                self._waiters.remove(waiter)
                return True, None
            return False, None

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter was cancelled: dequeue it, or give back the slot it was granted."""
        with self._lock:
            if waiter.lease is None:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                return
        waiter.lease.release(congested=False, succeeded=False)

    def _pause(self, end: float | None) -> float:
        """How long a waiter may sleep before it must look again.

        At most :data:`IDLE_AFTER`: a stream being read now may be left unread any
        moment, and nobody wakes the waiters when that happens.
        """
        now = time.monotonic()
        with self._lock:
            due = [self._progress_at + STALL_AFTER, now + IDLE_AFTER]
            due += [at for x in self._leases if (at := x.idle_at()) is not None]
        if end is not None:
            due.append(end)
        return max(0.001, min(due) - now)

    def _active(self, now: float) -> int:
        return sum(1 for lease in self._leases if not lease.idle(now))

    def _grant(self, owner: Hashable) -> _LocalLease:
        lease = _LocalLease(self, owner)
        self._leases.append(lease)
        return lease

    def _promote(self, now: float) -> list[_Waiter]:
        """Hand free slots to waiters in order (lock held); returns those granted."""
        granted = []
        stalled = now - self._progress_at >= STALL_AFTER
        while self._waiters and (stalled or self._active(now) < self.capacity()):
            waiter = self._waiters.popleft()
            waiter.lease = self._grant(waiter.owner)
            granted.append(waiter)
            stalled = False
            self._progress_at = now
        return granted

    # -- giving it back ---------------------------------------------------------------

    def release(self, lease: _LocalLease, *, congested: bool, succeeded: bool) -> Others:
        """Give a slot back, adapt the limit, and hand freed slots to waiters.

        Returns how many other requests of this process are still in flight, and whether
        the gate is contended.
        """
        with self._lock:
            if lease.released:
                return Others(len(self._leases), self._contended())
            lease.released = True
            contended = self._contended()
            self._leases.remove(lease)
            now = self._progress_at = time.monotonic()
            if congested:
                self.limit = float(max(1, min(int(self.limit), len(self._leases))))
                self.slow_start, self._streak = False, 0
            elif succeeded and (self._waiters or len(self._leases) + 1 >= self.capacity()):
                self._grow()
            granted = self._promote(now)
            others = Others(len(self._leases) - len(granted), contended)
        for waiter in granted:
            waiter.wake()
        return others

    def _contended(self) -> bool:
        return bool(self._waiters) or time.monotonic() - self._queued_at < CONTENDED_FOR

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


# --------------------------------------------------------------------------------------
# In-process circuit
# --------------------------------------------------------------------------------------


@dataclass
class _Entry:
    call_id: str
    fingerprint: str
    failed: bool


@dataclass
class LocalCircuit:
    """Outcomes of the last ``window`` calls (not attempts), and the open/probe state.

    A call retried three times is one entry, updated by each attempt; a failure of a
    request that already failed in the window (the same fingerprint: one prompt the
    model cannot answer) updates that entry rather than adding one, so a single
    prompt's repeatable failure cannot open the circuit for every other prompt.
    """

    entries: deque[_Entry] = field(default_factory=deque)
    failures: int = 0
    """How many of ``entries`` failed (kept as they change, not counted per call)."""
    opened_at: float | None = None
    probes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def admit(self, settings: BreakerSettings, refusable: bool) -> Admission | float:
        """Let the call through (closed, probe, or forced when it may not be refused)."""
        with self._lock:
            if self.opened_at is None:
                return Admission("closed")
            waited = time.monotonic() - self.opened_at
            if waited >= settings.cooldown and self.probes < settings.probes:
                self.probes += 1
                return Admission("probe")
            if not refusable:
                return Admission("forced")
            return max(0.0, settings.cooldown - waited)

    async def aadmit(self, settings: BreakerSettings, refusable: bool) -> Admission | float:
        """Async twin of :meth:`admit`."""
        return self.admit(settings, refusable)

    def record(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> None:
        """Note one attempt's outcome; open, close or keep the circuit accordingly."""
        with self._lock:
            if admission.kind == "probe":
                self.probes = max(0, self.probes - 1)
            if outcome == "none":
                return
            failed = outcome == "failure"
            if self.opened_at is not None:
                if not failed and admission.kind != "closed":  # healthy again
                    self.opened_at, self.probes, self.failures = None, 0, 0
                    self.entries.clear()
                elif failed and admission.kind == "probe":
                    self.opened_at = time.monotonic()  # another cooldown
                return
            self._note(settings, call_id, fingerprint, failed)
            calls = len(self.entries)
            if calls >= settings.minimum_calls and self.failures >= settings.failure_rate * calls:
                self.opened_at = time.monotonic()

    async def arecord(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> None:
        """Async twin of :meth:`record`."""
        self.record(settings, admission, call_id, fingerprint, outcome)

    def _note(
        self, settings: BreakerSettings, call_id: str, fingerprint: str, failed: bool
    ) -> None:
        """Update the call's entry (or the same request's failure), else add one."""
        for entry in self.entries:
            if entry.call_id == call_id or (  # the same call, or the same request failing
                failed and entry.failed and fingerprint and entry.fingerprint == fingerprint
            ):
                self.failures += failed - entry.failed
                entry.failed, entry.call_id = failed, call_id
                return
        self.entries.append(_Entry(call_id, fingerprint, failed))
        self.failures += failed
        while len(self.entries) > settings.window:
            self.failures -= self.entries.popleft().failed


# --------------------------------------------------------------------------------------
# In-process ledger
# --------------------------------------------------------------------------------------


class LocalLedger:
    """A budget's numbers, under one lock; reservations are dropped after ``fork()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent = 0.0
        self._reserved = 0.0
        self._in_flight = 0
        _forked_ledgers.add(self)

    def view(self) -> LedgerView:
        """The numbers now."""
        with self._lock:
            return LedgerView(self._spent, self._reserved, self._in_flight)

    def reserve(self, floor: float, limit: float) -> LedgerView | None:
        """Hold ``floor`` if it fits under ``limit`` (``None``), else the refusing view."""
        with self._lock:
            if self._spent + self._reserved + floor >= limit:
                return LedgerView(self._spent, self._reserved, self._in_flight)
            self._reserved += floor
            self._in_flight += 1
            return None

    async def areserve(self, floor: float, limit: float) -> LedgerView | None:
        """Async twin of :meth:`reserve`."""
        return self.reserve(floor, limit)

    def settle(self, floor: float, cost: float) -> float:
        """Drop one reservation of ``floor`` and add ``cost`` (0 for no answer)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            # Float sums drift: with nothing in flight, the reservation is exactly zero.
            self._reserved = self._reserved - floor if self._in_flight else 0.0
            self._spent += cost
            return self._spent

    async def asettle(self, floor: float, cost: float) -> float:
        """Async twin of :meth:`settle`."""
        return self.settle(floor, cost)

    def add(self, cost: float) -> float:
        """Add spend with no reservation (usage obtained outside the pipeline)."""
        with self._lock:
            self._spent += cost
            return self._spent

    def _forget_reservations(self) -> None:
        self._lock = threading.Lock()
        self._reserved, self._in_flight = 0.0, 0


_forked_ledgers: weakref.WeakSet[LocalLedger] = weakref.WeakSet()


# --------------------------------------------------------------------------------------
# The process's state
# --------------------------------------------------------------------------------------


class _Registry(dict[K, V]):
    """A get-or-create map under a lock."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        value = self.get(key)  # a dict read is atomic: no lock once it exists (every call)
        if value is not None:
            return value
        with self.lock:
            value = self.get(key)
            if value is None:
                value = self[key] = make()
            return value


class LocalState:
    """Gates and circuits shared by every ``ChatWBInference`` of this process (a :class:`State`)."""

    def __init__(self) -> None:
        self._gates: _Registry[Hashable, LocalGate] = _Registry()
        self._circuits: _Registry[Hashable, LocalCircuit] = _Registry()

    def gate(
        self, key: Hashable, initial_limit: int, probe_every: int, cap: int | None
    ) -> LocalGate:
        """The gate for ``key``, created with these settings on first use."""
        return self._gates.get_or_make(key, lambda: LocalGate(initial_limit, probe_every, cap))

    def circuit(self, key: Hashable) -> LocalCircuit:
        """The circuit for ``key``."""
        return self._circuits.get_or_make(key, LocalCircuit)

    def ledger(self, name: str, local: LocalLedger) -> LocalLedger:
        """In-process, every budget counts in its own ledger, named or not."""
        return local

    def reset(self) -> None:
        """Forget every gate and circuit (tests; a forked child)."""
        for registry in (self._gates, self._circuits):
            registry.lock = threading.Lock()
            registry.clear()


LOCAL = LocalState()


def reset_state() -> None:
    """Fresh gates, circuits and budget reservations for the whole process."""
    LOCAL.reset()
    for ledger in list(_forked_ledgers):
        ledger._forget_reservations()


os.register_at_fork(after_in_child=reset_state)
