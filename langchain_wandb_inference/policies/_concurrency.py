"""Adaptive concurrency limit: keep requests in flight near what W&B accepts.

W&B limits requests *in flight* per project, user and model (no number is published;
one model was seen at about one) and answers a 429 beyond it.  Sending a large
``batch`` blind produces a storm of 429s and failed items.  This policy takes a slot of
the shared gate of (base URL, project, model, cap) before each request — the gate
adapts its limit to the 429s it sees (see ``_state.LocalGate``) — and holds it until
the answer is consumed: a stream holds it while it is read, and gives it back when its
generator is closed.

A concurrency 429 is weighed by who else the gate serves (in this process, or in the
whole fleet when the state is shared):

* other requests in flight: the service is full of *our* requests, so the request goes
  back to the head of the queue and is sent when one of them finishes — that wait is
  the backoff;
* none in flight, but the gate is contended (requests wait for slots, or did within
  ``_state.CONTENDED_FOR``): the capacity is held by someone the gate cannot see (other
  processes), so the request backs off — full jitter, from :data:`BACKOFF` doubling up
  to :data:`MAX_BACKOFF` — and then goes back to the head of the queue.  Neither costs
  a retry attempt: a fleet overrunning the limit in per-process mode loses no items to
  it, not even the last of a batch;
* a lone request (nobody else in flight, no contention): the 429 goes up to the retry
  policy (its attempts and backoff).

Both are bounded: once :data:`PATIENCE` seconds passed since the attempt's first 429,
or after :data:`REQUEUES` returns, or when the next backoff would overrun the call's
deadline, the 429 goes to the retry policy too, whose attempts and backoff then decide.
Waiting for a slot counts against the call's deadline, and never lasts forever (the
gate's rules: re-entrant slots, idle streams not counted, a stalled queue let through).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import WBConcurrencyLimitError, WBInferenceError
from langchain_wandb_inference.policies import _config
from langchain_wandb_inference.policies._pipeline import (
    Call,
    Defer,
    Plan,
    Sleep,
    Step,
    deadline_exceeded,
    io,
)
from langchain_wandb_inference.policies._state import Gate, Others, State

PATIENCE = 60.0
"""Seconds after an attempt's first 429 during which 429s under contention send the
request back to the queue; later ones count as a failure for the retry policy."""
REQUEUES = 32
"""The most returns to the queue per attempt, whatever the clock says (with
``set_testing()`` the backoffs take no time)."""
BACKOFF = 0.25
"""Upper bound, in seconds, of the first backoff after a 429 nobody of ours explains."""
MAX_BACKOFF = 4.0
"""No such backoff waits longer than this."""
INITIAL_LIMIT = 2
"""Where slow start begins."""
PROBE_EVERY = 4
"""After the first 429: grow by one slot per this many full rounds of successes."""


@dataclass(frozen=True)
class AdaptiveConcurrency:
    """Limit requests in flight per (base URL, project, model), adapting to 429s."""

    state: State
    max_concurrency: int | None = None
    """Cap on requests in flight for one model through instances sharing this cap
    (``None``: only the adaptive limit)."""

    def gate(self, call: Call) -> Gate:
        """The shared gate for this call's (base URL, project, model, cap).

        The cap is part of the key, so an instance's ``max_concurrency`` holds even
        when another instance of the same model uses a different one.
        """
        key = (call.base_url, call.project, call.model, self.max_concurrency)
        return self.state.gate(key, INITIAL_LIMIT, PROBE_EVERY, self.max_concurrency)

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Hold a slot for the request; feed the outcome back into the limit."""
        gate = self.gate(call)
        requeues = 0
        patience_ends = math.inf
        while True:
            lease = yield io(gate, "acquire", call.remaining(), requeues > 0)
            if lease is None:
                raise deadline_exceeded(call, "a concurrency slot became free")
            try:
                result = yield from proceed(call)
            except WBConcurrencyLimitError:
                others = yield io(lease, "release", congested=True, succeeded=False)
                if not requeues:
                    patience_ends = time.monotonic() + PATIENCE
                delay = _backoff(others, requeues)
                if (
                    delay is None
                    or requeues >= REQUEUES
                    or time.monotonic() + delay >= patience_ends
                    or _overruns(call, delay)
                ):
                    raise
                requeues += 1
                if delay:
                    yield Sleep(delay)
                continue
            except WBInferenceError:
                yield io(lease, "release", congested=False, succeeded=False)
                raise
            except BaseException:  # given up, even a closed plan: give the slot back now
                lease.release(congested=False, succeeded=False)
                raise
            yield Defer(lease)
            return result


def _backoff(others: Others, requeues: int) -> float | None:
    """The wait before going back to the queue after a 429; ``None``: a lone 429.

    No wait while other requests are in flight (one of them finishing is the wait); a
    jittered backoff when the gate is contended, since the capacity is held by requests
    it cannot see; ``None`` otherwise (the retry policy decides).
    """
    if others.in_flight:
        return 0.0
    if not others.contended:
        return None
    if _config.testing_attempts is not None:
        return 0.0
    return random.uniform(0, min(MAX_BACKOFF, BACKOFF * 2**requeues))


def _overruns(call: Call, delay: float) -> bool:
    left = call.remaining()
    return left is not None and delay >= left
