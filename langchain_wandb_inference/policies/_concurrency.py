"""Adaptive concurrency limit: keep requests in flight near what W&B accepts.

W&B limits requests *in flight* per project, user and model (no number is published;
one model was seen at about one) and answers a 429 beyond it.  Sending a large
``batch`` blind produces a storm of 429s and failed items.  This policy takes a slot of
the shared gate of (base URL, project, model, cap) before each request — the gate
adapts its limit to the 429s it sees (see ``_state.LocalGate``) — and holds it until
the answer is consumed: a stream holds it while it is read, and gives it back when its
generator is closed.

A concurrency 429 while other requests of this process are in flight means the service
is full of *our* requests: the request goes back to the head of the queue and is sent
when one of them finishes — that wait is the backoff, so it costs no retry attempt.
Alone (someone else holds the capacity), or after :data:`REQUEUES` such returns, the
429 goes up to the retry policy.  Waiting for a slot counts against the call's deadline,
and never lasts forever (the gate's rules: re-entrant slots, idle streams not counted,
a stalled queue let through).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import WBConcurrencyLimitError, WBInferenceError
from langchain_wandb_inference.policies._pipeline import (
    Call,
    Defer,
    Plan,
    Step,
    deadline_exceeded,
    io,
)
from langchain_wandb_inference.policies._state import Gate, LocalState

REQUEUES = 3
"""How often one request may go back to the queue after a 429 before it counts as a failure."""
INITIAL_LIMIT = 2
"""Where slow start begins."""
PROBE_EVERY = 4
"""After the first 429: grow by one slot per this many full rounds of successes."""


@dataclass(frozen=True)
class AdaptiveConcurrency:
    """Limit requests in flight per (base URL, project, model), adapting to 429s."""

    state: LocalState
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
        while True:
            lease = yield io(gate, "acquire", call.remaining(), requeues > 0)
            if lease is None:
                raise deadline_exceeded(call, "a concurrency slot became free")
            try:
                result = yield from proceed(call)
            except WBConcurrencyLimitError:
                others = yield io(lease, "release", congested=True, succeeded=False)
                if not others or requeues >= REQUEUES:
                    raise
                requeues += 1
                continue
            except WBInferenceError:
                yield io(lease, "release", congested=False, succeeded=False)
                raise
            except BaseException:  # given up, even a closed plan: give the slot back now
                lease.release(congested=False, succeeded=False)
                raise
            yield Defer(lease)
            return result
