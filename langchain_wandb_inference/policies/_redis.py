"""Fleet state: the policies' gates, circuits and ledgers kept in Redis, with a fallback.

:class:`FleetState` implements ``_state.State`` for every process using one Redis: a
gate's requests in flight and adaptive limit, a circuit's window, a named budget's
spend are the fleet's.  Every operation goes to Redis first and, when Redis cannot be
used, to the process's own state (``_state.LOCAL``, or the budget's own ledger), so a
call never fails because coordination is down; the policies cannot tell the two apart.

What holds fleet-wide, and how (the in-process rules are in ``_state``):

* **Slots are leases** with a time to live (:data:`LEASE_TTL`), renewed every third of
  it while the request or stream is alive, so a SIGKILLed worker's slots come back
  within :data:`LEASE_TTL`.  Waiters queue FIFO in Redis; a release grants freed slots
  to the head of the queue in the same script.  The adaptive limit (slow start, drop
  on a 429, slow probing up, the cap) is the in-process algorithm over the fleet's
  counts, and it outlives the workers (:data:`LIMIT_TTL` after its last use).
* **Re-entrant grants**: a thread or task already holding a slot of the gate gets
  another at once, counted by the fleet (it is in flight), over the limit if need be.
* **Idle streams** (``_state.IDLE_AFTER``) are still counted by the other processes —
  the service still holds them — but lend their slot to their own process's waiters,
  so a process cannot deadlock on a stream it does not read.
* **Stalled queue**: when no request of the gate, anywhere, finished, was let in or
  delivered a chunk for ``_state.STALL_AFTER``, the head of the queue is let through.
  Deliveries are reported with the lease renewals, so they are seen within a third of
  :data:`LEASE_TTL`.
* **Circuit**: the same window of calls, with the same per-call and per-request
  fingerprint deduplication, fleet-wide: one prompt failing in many workers is one
  failure.  A probe's permit expires after :data:`LEASE_TTL` (a prober that died).
* **Budget**: atomic reserve / settle of a named budget's spend; a reservation is a
  lease too (a dead worker's floor is released within :data:`LEASE_TTL`).

Waiting costs Redis little, whatever the number of waiters: one background thread per
process (:class:`_Agent`) blocks on one list of wake-ups for all of its waiters
(``BLPOP``, :data:`WAKE_POLL`), heartbeats their tickets with one script per gate per
:data:`WAKE_POLL`, and renews held leases with one script per gate per renewal.  A
waiter itself runs one script to queue; the slot a release grants it is a full lease
at once, and the wake-up says so (a waiter that died meanwhile holds it at most
:data:`LEASE_TTL`, like any holder).

Failure handling: 0.5 s timeouts and no retries; the first failure logs one warning
and switches every operation to the fallback, without touching the network, for
:data:`RECONNECT_INTERVAL`; then one operation tries Redis again, and an info line
says when it is back.  Requests that were let in by the fallback finish there.  The
URL is never logged (its password): only its scheme, host, port and database are.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from langchain_wandb_inference._redact import Scrubber
from langchain_wandb_inference.policies import _lua, _state
from langchain_wandb_inference.policies._pipeline import Io, Plan, Usage, arun, io, run
from langchain_wandb_inference.policies._state import (
    Admission,
    BreakerSettings,
    Lease,
    LedgerView,
    LocalLedger,
    LocalState,
    Others,
    Outcome,
    Reading,
    _Registry,
    _Waiter,
    current_owner,
)

logger = logging.getLogger("langchain_wandb_inference.fleet")

T = TypeVar("T")

PREFIX = "wbinf"
"""Every key starts with this (``wbinf:{gate:…}:leases``, …)."""
LEASE_TTL = 30.0
"""Seconds a slot, reservation or probe permit outlives its last renewal (a dead worker's)."""
WAKE_POLL = 1.0
"""Seconds the agent blocks for wake-ups before heartbeating its waiters' tickets."""
TICKET_TTL = 5.0
"""Seconds a waiter's ticket (and its process's wake-up list) lasts without a heartbeat."""
LIMIT_TTL = 7 * 24 * 3600.0
"""Seconds the learned limit is kept after the gate's last use."""
SPEND_TTL = 7 * 24 * 3600.0
"""Seconds a named budget's spend is kept after its last use."""
CIRCUIT_TTL = 3600.0
"""Seconds a circuit's window (and open state) is kept after its last use, at least."""
TIMEOUT = 0.5
"""Seconds to connect to Redis, and to wait for any answer."""
RECONNECT_INTERVAL = 5.0
"""Seconds between attempts to reach Redis once it failed."""


class Unavailable(Exception):
    """Redis cannot be used right now: the caller falls back to in-process state."""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _blocking(plan: Plan[T]) -> T:
    """Run a plan of Redis effects (``Io`` only) with blocking calls."""
    return run(plan, _no_request, _no_request)[0]


async def _awaiting(plan: Plan[T]) -> T:
    """Run the same plan without blocking the event loop."""
    return (await arun(plan, _no_request, _no_request))[0]


def _no_request(effect: Any) -> Any:
    msg = f"a shared-state plan yields only Io effects, not {effect!r}"
    raise TypeError(msg)


# --------------------------------------------------------------------------------------
# Connections and failure handling
# --------------------------------------------------------------------------------------


class _Loop:
    """The asyncio client of one event loop (``redis.asyncio`` pools are loop-bound)."""

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self.scripts: dict[str, Any] = {}


class Coordinator:
    """One Redis, as this process uses it: clients, failure handling, the agent thread.

    Nothing is connected until the first operation.  Every operation either succeeds
    or raises :class:`Unavailable`; programming errors raise their own exception.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        parts = urllib.parse.urlsplit(url)
        self.where = (
            f"unix://{parts.path}"
            if parts.scheme == "unix"
            else f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
        )
        """The URL without its credentials: what logs may show."""
        self._scrub = Scrubber([url, parts.password or "", urllib.parse.unquote(url)])
        self._start()
        _coordinators.add(self)

    def _start(self) -> None:
        """Everything this process owns: locks, clients, the agent (again after fork)."""
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0
        self.process = uuid.uuid4().hex
        """Names this process's tickets and wake-up list."""
        self.wake_key = f"{PREFIX}:wake:{self.process}"
        self._client = self._make(redis.Redis, TIMEOUT)
        self._blocking = self._make(redis.Redis, TIMEOUT + WAKE_POLL)
        self._scripts: dict[str, Any] = {}
        self._loops: dict[asyncio.AbstractEventLoop, _Loop] = {}
        self.agent = _Agent(self)

    def _make(self, cls: Any, timeout: float) -> Any:
        retry = AsyncRetry(NoBackoff(), 0) if cls is aredis.Redis else Retry(NoBackoff(), 0)
        return cls.from_url(
            self._url,
            socket_connect_timeout=TIMEOUT,
            socket_timeout=timeout,
            retry=retry,  # redis-py retries 3x with backoff by default: fail fast instead
            decode_responses=True,
            health_check_interval=0,
        )

    def key(self, kind: str, *parts: Any) -> str:
        """``wbinf:{kind:digest}``: one object's key stem (its parts are hashed, not shown)."""
        digest = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:20]
        return f"{PREFIX}:{{{kind}:{digest}}}"

    def ticket(self) -> str:
        """A fresh id for a slot, ticket or reservation of this process."""
        return f"{self.process}.{uuid.uuid4().hex}"

    # -- failure handling ---------------------------------------------------------------

    def _enter(self) -> float:
        """Refuse at once while an outage is waited out; let one caller try after it.

        Returns when the operation started (see :meth:`_succeeded`).
        """
        now = time.monotonic()
        if self._down_since is None:
            return now
        with self._lock:
            if self._down_since is not None:
                if now < self._next_try:
                    raise Unavailable(f"Redis at {self.where} unavailable")
                self._next_try = now + RECONNECT_INTERVAL
        return now

    def _failed(self, exc: redis.RedisError) -> Unavailable:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
            self._next_try = time.monotonic() + RECONNECT_INTERVAL
        if first:
            logger.warning(
                "W&B Inference fleet: Redis at %s unavailable (%s: %s); using per-process "
                "state, trying again at most every %gs",
                self.where,
                type(exc).__name__,
                self._scrub.text(str(exc)),
                RECONNECT_INTERVAL,
            )
        return Unavailable(f"Redis at {self.where}: {type(exc).__name__}")

    def _succeeded(self, started: float) -> None:
        """An operation worked: the outage is over, unless that one began before it."""
        if self._down_since is None or started < self._down_since:
            return
        with self._lock:
            if self._down_since is None:
                return
            outage, self._down_since = time.monotonic() - self._down_since, None
        logger.info("W&B Inference fleet: Redis at %s is back after %.1fs", self.where, outage)

    def _guard(self, fn: Callable[[], T]) -> T:
        started = self._enter()
        try:
            result = fn()
        except redis.DataError:  # arguments redis-py cannot encode: this package's bug
            raise
        except redis.RedisError as exc:  # refused, reset, timed out, OOM, NOAUTH, ...
            failure = exc
        else:
            self._succeeded(started)
            return result
        raise self._failed(failure) from None  # the cause might quote the URL

    async def _aguard(self, fn: Callable[[], Awaitable[T]]) -> T:
        started = self._enter()
        try:
            result = await fn()
        except redis.DataError:
            raise
        except redis.RedisError as exc:
            failure = exc
        else:
            self._succeeded(started)
            return result
        raise self._failed(failure) from None

    # -- operations ---------------------------------------------------------------------

    def call(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one of ``_lua``'s scripts (blocking)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        return self._guard(partial(script, keys=keys, args=args))

    async def acall(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one of ``_lua``'s scripts on this event loop's client."""
        loop = self._loop()
        script = loop.scripts.get(source)
        if script is None:
            script = loop.scripts[source] = loop.client.register_script(source)
        return await self._aguard(partial(script, keys=keys, args=args))

    def script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Io[Any]:
        """The effect of running a script, sync or async."""
        return io(self, "call", source, keys, args)

    def wakeups(self) -> list[str]:
        """Ids granted to this process's waiters: blocks up to :data:`WAKE_POLL` for one."""

        def pop() -> list[str]:
            first = self._blocking.blpop([self.wake_key], WAKE_POLL)
            if first is None:
                return []
            return [first[1], *(self._blocking.lpop(self.wake_key, 1000) or [])]

        return self._guard(pop)

    def _loop(self) -> _Loop:
        running = asyncio.get_running_loop()
        with self._lock:
            for stale in [loop for loop in self._loops if loop.is_closed()]:
                del self._loops[stale]  # its connections died with it
            bundle = self._loops.get(running)
            if bundle is None:
                bundle = self._loops[running] = _Loop(self._make(aredis.Redis, TIMEOUT))
            return bundle

    def close(self) -> None:
        """Stop the agent and drop the connections (tests; a process tearing down)."""
        self.agent.stop()
        self._client.close()
        self._blocking.close()


_coordinators: weakref.WeakSet[Coordinator] = weakref.WeakSet()


# --------------------------------------------------------------------------------------
# The agent: wake-ups, heartbeats, renewals
# --------------------------------------------------------------------------------------


class _Held:
    """Something the agent renews: a slot or a reservation, by id."""

    def __init__(self, id_: str) -> None:
        self.id = id_
        self.touched = False
        """The stream delivered since the last renewal (the gate made progress)."""


class _Renewable(Protocol):
    """A gate or ledger whose held ids the agent renews in one script."""

    def renew(self, held: Sequence[_Held]) -> list[bool]:
        """Extend each; ``False`` for one Redis no longer knows (lost)."""
        ...


class _Agent:
    """The background thread of a coordinator (one per process and Redis).

    Blocks on the process's wake-up list while any waiter is queued and wakes the one
    each id names; every :data:`WAKE_POLL` heartbeats the queued tickets (one script per
    gate; a granted or lost ticket wakes its waiter too); every third of
    :data:`LEASE_TTL` renews what is held.  When Redis fails, it wakes every waiter, so
    that each falls back at once.
    """

    def __init__(self, coordinator: Coordinator) -> None:
        self._c = coordinator
        self._lock = threading.Lock()
        self._kick = threading.Event()
        self._waiters: dict[str, tuple[FleetGate, _Ticket]] = {}
        self._held: dict[_Renewable, dict[str, _Held]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, gate: FleetGate, ticket: str, waiter: _Ticket) -> None:
        """Wake ``waiter`` when ``ticket`` is granted (or needs a look)."""
        with self._lock:
            self._waiters[ticket] = (gate, waiter)
        self._running()

    def unwatch(self, ticket: str) -> None:
        """The waiter is done waiting."""
        with self._lock:
            self._waiters.pop(ticket, None)

    def keep(self, owner: _Renewable, held: _Held) -> None:
        """Renew ``held`` until :meth:`drop`."""
        with self._lock:
            self._held.setdefault(owner, {})[held.id] = held
        self._running()

    def drop(self, owner: _Renewable, held: _Held) -> None:
        """Stop renewing ``held``."""
        with self._lock:
            ids = self._held.get(owner, {})
            ids.pop(held.id, None)
            if not ids:
                self._held.pop(owner, None)

    def stop(self) -> None:
        """End the thread (a closed coordinator)."""
        self._stopped = True
        self._kick.set()

    def _running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wbinf-fleet", daemon=True)
                self._thread.start()
        self._kick.set()

    def _run(self) -> None:
        heartbeat = renewal = time.monotonic()
        while not self._stopped:
            try:
                if self._watching():
                    self._wake_granted()
                else:
                    self._kick.wait(max(0.0, renewal - time.monotonic()) if self._held else None)
                    self._kick.clear()
                now = time.monotonic()
                if now >= heartbeat:
                    heartbeat = now + WAKE_POLL
                    self._heartbeat()
                if now >= renewal:
                    renewal = now + LEASE_TTL / 3
                    self._renew()
            except Exception:  # never let the agent die: waiters depend on it
                logger.exception("W&B Inference fleet: the coordination thread failed")
                self._kick.wait(WAKE_POLL)

    def _watching(self) -> bool:
        with self._lock:
            return bool(self._waiters)

    def _wake_granted(self) -> None:
        try:
            ids = self._c.wakeups()
        except Unavailable:
            with self._lock:
                everyone = list(self._waiters)
            self._wake(everyone, granted=False)  # each will fall back
            self._kick.wait(WAKE_POLL)
            self._kick.clear()
            return
        self._wake(ids, granted=True)

    def _wake(self, tickets: Sequence[str], granted: bool) -> None:
        """Wake these tickets' waiters: with their slot, or to look again."""
        with self._lock:
            found = [self._waiters.get(t) for t in tickets]
        for entry in found:
            if entry is not None:
                entry[1].granted = entry[1].granted or granted
                entry[1].wake()

    def _heartbeat(self) -> None:
        with self._lock:
            by_gate: dict[FleetGate, list[str]] = {}
            for ticket, (gate, _) in self._waiters.items():
                by_gate.setdefault(gate, []).append(ticket)
        for gate, tickets in by_gate.items():
            try:
                states = gate.heartbeat(tickets)
            except Unavailable:
                self._wake(tickets, granted=False)
                continue
            self._wake([t for t, s in zip(tickets, states, strict=True) if s == 2], granted=True)
            self._wake([t for t, s in zip(tickets, states, strict=True) if s == 0], granted=False)

    def _renew(self) -> None:
        with self._lock:
            batches = [(owner, list(held.values())) for owner, held in self._held.items()]
        for owner, held in batches:
            try:
                kept = owner.renew(held)
            except Unavailable:
                continue  # an outage: the next round tries again (or finds them lost)
            for item, ok in zip(held, kept, strict=True):
                if not ok:
                    self.drop(owner, item)


# --------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------


class FleetLease(Reading, _Held):
    """A fleet slot, held by this process from sending until the answer is consumed."""

    def __init__(self, gate: FleetGate, id_: str, owner: Hashable, lent: bool) -> None:
        Reading.__init__(self, owner)
        _Held.__init__(self, id_)
        self.gate = gate
        self.lent = lent
        """Let in by one of this process's idle streams (over the fleet's limit)."""

    def progress(self, reading: bool) -> None:
        """Note the reader's progress; reported as the gate's at the next renewal."""
        super().progress(reading)
        self.touched = True

    def release(self, *, congested: bool, succeeded: bool) -> Others:
        """Give the slot back (idempotent); returns who else is in flight, and contention."""
        return _blocking(self.gate.release(self, congested, succeeded))

    async def arelease(self, *, congested: bool, succeeded: bool) -> Others:
        """Async twin of :meth:`release`."""
        return await _awaiting(self.gate.release(self, congested, succeeded))

    def finish(self, model: str, usage: Usage | None) -> None:
        """The answer was consumed: the slot is free and the request succeeded."""
        self.release(congested=False, succeeded=True)

    async def afinish(self, model: str, usage: Usage | None) -> None:
        """Async twin of :meth:`finish`."""
        await self.arelease(congested=False, succeeded=True)


class _Ticket(_Waiter):
    """A waiter queued in Redis; ``granted`` once the agent heard its slot is ours."""

    granted = False


@dataclass(frozen=True)
class _Wait:
    """Sleep until the agent wakes ``waiter``, at most ``seconds`` (``None``: no limit)."""

    waiter: _Ticket
    seconds: float | None

    def run(self) -> None:
        self.waiter.event.wait(self.seconds)
        self.waiter.event.clear()

    async def arun(self) -> None:
        future = self.waiter.future
        assert future is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), self.seconds)
        if future.done():
            self.waiter.future = asyncio.get_running_loop().create_future()


class FleetGate:
    """The fleet's gate for one (base URL, project, model, cap), falling back to LOCAL's."""

    def __init__(
        self,
        state: FleetState,
        key: Hashable,
        initial_limit: int,
        probe_every: int,
        cap: int | None,
    ) -> None:
        self._state = state
        self._c = state.coordinator
        self._settings = (key, initial_limit, probe_every, cap)
        stem = self._c.key("gate", key)
        self.keys = [f"{stem}:leases", f"{stem}:state", f"{stem}:queue", f"{stem}:qexp"]
        self._lock = threading.Lock()
        self._leases: set[FleetLease] = set()
        self._waiting = 0

    def _common(self) -> list[Any]:
        _, initial, probe_every, cap = self._settings
        return [
            f"{PREFIX}:wake:",
            initial,
            probe_every,
            cap or 0,
            _ms(LIMIT_TTL),
            _ms(LEASE_TTL),
            _ms(_state.STALL_AFTER),
            _ms(TICKET_TTL),
        ]

    def _script(self, source: str, *args: Any) -> Io[Any]:
        return self._c.script(source, self.keys, [*self._common(), *args])

    def _call(self, source: str, *args: Any) -> Any:
        return self._c.call(source, self.keys, [*self._common(), *args])

    def _local(self) -> _state.LocalGate:
        return self._state.local.gate(*self._settings)

    # -- taking a slot ------------------------------------------------------------------

    def acquire(self, timeout: float | None, front: bool = False) -> Lease | None:
        """Block until a fleet slot is ours (else, Redis down, a local one); ``None``: timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        waiter = _Ticket(current_owner(), None)
        with contextlib.suppress(Unavailable):
            return _blocking(self._acquire(waiter, end, front))
        return self._local().acquire(_left(end), front)

    async def aacquire(self, timeout: float | None, front: bool = False) -> Lease | None:
        """Await a fleet slot (else a local one) without blocking the loop."""
        end = None if timeout is None else time.monotonic() + timeout
        waiter = _Ticket(current_owner(), asyncio.get_running_loop())
        with contextlib.suppress(Unavailable):
            return await _awaiting(self._acquire(waiter, end, front))
        return await self._local().aacquire(_left(end), front)

    def _acquire(self, waiter: _Ticket, end: float | None, front: bool) -> Plan[FleetLease | None]:
        """Queue for a slot (a holder gets one at once), then wait for the agent's word.

        A grant is a full lease already: the word that it came is enough.  Otherwise
        the waiter looks again (one script) when its ticket was lost, when one of this
        process's streams went idle, or at its deadline.
        """
        ticket = self._c.ticket()
        force = self._holds(waiter.owner)
        got = yield self._script(_lua.GATE_ACQUIRE, ticket, int(front), int(force))
        if got:
            return self._held(ticket, waiter.owner, lent=False)
        with self._lock:
            self._waiting += 1
        self._c.agent.watch(self, ticket, waiter)
        try:
            while True:
                yield _Wait(waiter, self._pause(end))
                if waiter.granted:
                    return self._held(ticket, waiter.owner, lent=False)
                lend = self._may_lend()
                got = yield self._script(_lua.GATE_POLL, ticket, int(lend))
                if got:
                    return self._held(ticket, waiter.owner, lent=got == 2)
                if end is not None and time.monotonic() >= end:
                    yield self._script(_lua.GATE_CANCEL, ticket)
                    return None
        except GeneratorExit:  # closed unfinished: the ticket expires by itself
            raise
        except BaseException:
            with contextlib.suppress(Unavailable):  # else it expires by itself
                yield self._script(_lua.GATE_CANCEL, ticket)
            raise
        finally:
            self._c.agent.unwatch(ticket)
            with self._lock:
                self._waiting -= 1

    def _holds(self, owner: Hashable) -> bool:
        with self._lock:
            return any(lease.owner == owner for lease in self._leases)

    def _may_lend(self) -> bool:
        """Whether one of this process's idle streams can lend its slot to a waiter."""
        now = time.monotonic()
        with self._lock:
            idle = sum(1 for lease in self._leases if lease.idle(now))
            lent = sum(1 for lease in self._leases if lease.lent)
        return idle > lent

    def _pause(self, end: float | None) -> float | None:
        """How long a waiter may sleep before it must look again (``None``: until woken).

        Until its deadline, or until one of this process's streams may go idle.
        """
        if self._may_lend():
            return 0.0
        now = time.monotonic()
        with self._lock:
            due = [at for lease in self._leases if (at := lease.idle_at()) is not None]
        due = [at - now for at in due if at > now]
        if end is not None:
            due.append(max(0.0, end - now))
        return min(due) if due else None

    def _held(self, ticket: str, owner: Hashable, lent: bool) -> FleetLease:
        lease = FleetLease(self, ticket, owner, lent)
        with self._lock:
            self._leases.add(lease)
        self._c.agent.keep(self, lease)
        return lease

    def capacity(self) -> int:
        """Slots the fleet has now (the local gate's while Redis is down)."""
        with contextlib.suppress(Unavailable):
            return int(self._call(_lua.GATE_CAPACITY))
        return self._local().capacity()

    # -- giving it back -----------------------------------------------------------------

    def release(self, lease: FleetLease, congested: bool, succeeded: bool) -> Plan[Others]:
        """Give a slot back and adapt the fleet's limit; who else is in flight, contention."""
        with self._lock:
            held = lease in self._leases
            self._leases.discard(lease)
            mine = Others(len(self._leases), self._waiting > 0)
        if not held:
            return mine
        self._c.agent.drop(self, lease)
        try:
            counts = yield self._script(
                _lua.GATE_RELEASE,
                lease.id,
                int(congested),
                int(succeeded),
                _ms(_state.CONTENDED_FOR),
            )
        except Unavailable:
            return mine  # the lease expires by itself; this process's own view will do
        return Others(int(counts[0]), bool(counts[1]))

    # -- for the agent ------------------------------------------------------------------

    def renew(self, held: Sequence[_Held]) -> list[bool]:
        """Extend these leases; those whose streams delivered count as progress."""
        marks = []
        for lease in held:
            marks.append(("+" if lease.touched else "-") + lease.id)
            lease.touched = False
        return [bool(x) for x in self._call(_lua.GATE_RENEW, *marks)]

    def heartbeat(self, tickets: Sequence[str]) -> list[int]:
        """Keep these tickets queued: 2 granted, 1 queued, 0 gone."""
        return [int(x) for x in self._call(_lua.GATE_HEARTBEAT, *tickets)]


def _left(end: float | None) -> float | None:
    return None if end is None else max(0.0, end - time.monotonic())


# --------------------------------------------------------------------------------------
# Circuit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetAdmission(Admission):
    """An admission by the fleet's circuit; a probe's ``permit`` is given back on record."""

    permit: str = ""


class FleetCircuit:
    """The fleet's circuit for one (base URL, model), falling back to LOCAL's."""

    def __init__(self, state: FleetState, key: Hashable) -> None:
        self._state = state
        self._c = state.coordinator
        self._key = key
        stem = self._c.key("circuit", key)
        self.keys = [f"{stem}:state", f"{stem}:window", f"{stem}:probes"]

    def _local(self) -> _state.LocalCircuit:
        return self._state.local.circuit(self._key)

    def _admit(self, settings: BreakerSettings, refusable: bool) -> Plan[Admission | float]:
        permit = self._c.ticket()
        args = [_ttl(settings), _ms(settings.cooldown), settings.probes, _ms(LEASE_TTL), permit]
        try:
            answer = yield self._c.script(_lua.CIRCUIT_ADMIT, self.keys, [*args, int(refusable)])
        except Unavailable:
            answer = None
        if answer is None:
            local: Admission | float = yield io(self._local(), "admit", settings, refusable)
            return local
        kind, wait_ms = answer
        if kind == "refused":
            return float(wait_ms) / 1000
        return FleetAdmission(kind, permit if kind == "probe" else "")

    def admit(self, settings: BreakerSettings, refusable: bool) -> Admission | float:
        """Let the call through (closed, probe, forced), or the seconds until a probe."""
        return _blocking(self._admit(settings, refusable))

    async def aadmit(self, settings: BreakerSettings, refusable: bool) -> Admission | float:
        """Async twin of :meth:`admit`."""
        return await _awaiting(self._admit(settings, refusable))

    def _record(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> Plan[None]:
        if isinstance(admission, FleetAdmission):
            args = [_ttl(settings), admission.kind, admission.permit, call_id, fingerprint]
            args += [outcome, settings.window, settings.minimum_calls, repr(settings.failure_rate)]
            try:
                yield self._c.script(_lua.CIRCUIT_RECORD, self.keys, args)
                return
            except Unavailable:
                admission = Admission("closed")  # Redis lost since: learnt here at least
        yield io(self._local(), "record", settings, admission, call_id, fingerprint, outcome)

    def record(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> None:
        """Note one attempt's outcome in the fleet's window (or this process's)."""
        _blocking(self._record(settings, admission, call_id, fingerprint, outcome))

    async def arecord(
        self,
        settings: BreakerSettings,
        admission: Admission,
        call_id: str,
        fingerprint: str,
        outcome: Outcome,
    ) -> None:
        """Async twin of :meth:`record`."""
        await _awaiting(self._record(settings, admission, call_id, fingerprint, outcome))


def _ttl(settings: BreakerSettings) -> int:
    return _ms(max(CIRCUIT_TTL, 2 * settings.cooldown))


# --------------------------------------------------------------------------------------
# Ledger
# --------------------------------------------------------------------------------------


class FleetLedger:
    """A named budget's fleet-wide ledger, falling back to the budget's own.

    The interface names a reservation by its floor (reservations of one floor are
    interchangeable), so this ledger remembers, per floor, which of its reservations
    are held in Redis (by id) and which in the fallback.
    """

    def __init__(self, state: FleetState, name: str, local: LocalLedger) -> None:
        self._c = state.coordinator
        self._fallback = local
        stem = self._c.key("budget", name)
        self.keys = [f"{stem}:state", f"{stem}:res", f"{stem}:resx"]
        self._lock = threading.Lock()
        self._held: dict[float, list[_Held | None]] = {}
        _ledgers.add(self)

    def _script(self, source: str, *args: Any) -> Io[Any]:
        return self._c.script(source, self.keys, [_ms(SPEND_TTL), *args])

    def _call(self, source: str, *args: Any) -> Any:
        return self._c.call(source, self.keys, [_ms(SPEND_TTL), *args])

    def _hold(self, floor: float, held: _Held | None) -> None:
        with self._lock:
            self._held.setdefault(floor, []).append(held)

    def _take(self, floor: float) -> _Held | None:
        with self._lock:
            holds = self._held.get(floor)
            return holds.pop() if holds else None

    def _reserve(self, floor: float, limit: float) -> Plan[LedgerView | None]:
        held = _Held(self._c.ticket())
        try:
            answer = yield self._script(
                _lua.LEDGER_RESERVE, held.id, repr(floor), repr(limit), _ms(LEASE_TTL)
            )
        except Unavailable:
            answer = None
        if answer is None:
            refused: LedgerView | None = yield io(self._fallback, "reserve", floor, limit)
            if refused is None:
                self._hold(floor, None)
            return refused
        got, spent, reserved, count = answer
        if not got:
            return LedgerView(float(spent), float(reserved), int(count))
        self._hold(floor, held)
        self._c.agent.keep(self, held)
        return None

    def reserve(self, floor: float, limit: float) -> LedgerView | None:
        """Hold ``floor`` fleet-wide if it fits under ``limit``; else the refusing view."""
        return _blocking(self._reserve(floor, limit))

    async def areserve(self, floor: float, limit: float) -> LedgerView | None:
        """Async twin of :meth:`reserve`."""
        return await _awaiting(self._reserve(floor, limit))

    def _settle(self, floor: float, cost: float) -> Plan[float]:
        held = self._take(floor)
        if held is None:  # reserved in the fallback
            spent: float = yield io(self._fallback, "settle", floor, cost)
            return spent
        self._c.agent.drop(self, held)
        return (yield from self._add(held.id, cost))

    def _add(self, held_id: str, cost: float) -> Plan[float]:
        try:
            spent = yield self._script(_lua.LEDGER_SETTLE, held_id, repr(cost))
        except Unavailable:
            spent = None
        if spent is None:
            return self._fallback.add(cost)  # counted in this process at least
        return float(spent)

    def settle(self, floor: float, cost: float) -> float:
        """Replace a reservation by the answer's cost; returns the fleet's spend."""
        return _blocking(self._settle(floor, cost))

    async def asettle(self, floor: float, cost: float) -> float:
        """Async twin of :meth:`settle`."""
        return await _awaiting(self._settle(floor, cost))

    def add(self, cost: float) -> float:
        """Add spend with no reservation; returns the fleet's spend."""
        return _blocking(self._add("", cost))

    def view(self) -> LedgerView:
        """The fleet's numbers now (the fallback's while Redis is down)."""
        with contextlib.suppress(Unavailable):
            spent, reserved, count = self._call(_lua.LEDGER_VIEW)
            return LedgerView(float(spent), float(reserved), int(count))
        return self._fallback.view()

    def renew(self, held: Sequence[_Held]) -> list[bool]:
        """Extend these reservations (for the agent)."""
        renewed = self._call(_lua.LEDGER_RENEW, _ms(LEASE_TTL), *(item.id for item in held))
        return [bool(x) for x in renewed]

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._held = {}


_ledgers: weakref.WeakSet[FleetLedger] = weakref.WeakSet()


# --------------------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------------------


class FleetState:
    """A ``_state.State`` shared by every process using one Redis (see the module doc)."""

    def __init__(self, coordinator: Coordinator, local: LocalState) -> None:
        self.coordinator = coordinator
        self.local = local
        self._gates: _Registry[Hashable, FleetGate] = _Registry()
        self._circuits: _Registry[Hashable, FleetCircuit] = _Registry()

    def gate(
        self, key: Hashable, initial_limit: int, probe_every: int, cap: int | None
    ) -> FleetGate:
        """The fleet's gate for ``key``."""
        return self._gates.get_or_make(
            key, lambda: FleetGate(self, key, initial_limit, probe_every, cap)
        )

    def circuit(self, key: Hashable) -> FleetCircuit:
        """The fleet's circuit for ``key``."""
        return self._circuits.get_or_make(key, lambda: FleetCircuit(self, key))

    def ledger(self, name: str, local: LocalLedger) -> FleetLedger:
        """The fleet's ledger of the budget called ``name``, falling back to ``local``."""
        return FleetLedger(self, name, local)

    def _forget(self) -> None:
        """After fork: this process holds nothing of its parent's."""
        for registry in (self._gates, self._circuits):
            registry.lock = threading.Lock()
            registry.clear()


_states: _Registry[str, FleetState] = _Registry()


def state_for(url: str) -> FleetState:
    """The fleet state of the Redis at ``url``, one per process."""
    return _states.get_or_make(url, lambda: FleetState(Coordinator(url), _state.LOCAL))


def close_all() -> None:
    """Forget every fleet state and close its connections (tests)."""
    with _states.lock:
        states = list(_states.values())
        _states.clear()
    for state in states:
        state.coordinator.close()


def _after_fork_in_child() -> None:
    for coordinator in list(_coordinators):
        coordinator._start()
    for state in list(_states.values()):
        state._forget()
    for ledger in list(_ledgers):
        ledger._forget()
    _states.lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
