"""Budget guard: stop calling once the estimated spend reaches a limit.

``ChatWBInference(budget_usd=5)`` gives one model its own budget; a :class:`Budget`
passed as ``budget=`` is shared by every model (and thread) that holds it.

How a call is counted, and why:

* **Before sending**, under the budget's lock, the guard *reserves* the least the
  call can cost — its prompt at the model's input price, the *floor*.  If what was
  spent, plus what is reserved by calls still in flight, plus this floor reaches the
  limit, the call fails with
  :class:`~langchain_wandb_inference.errors.WBBudgetExceededError` and no request
  leaves the machine.  Checking and reserving in one locked step is what makes a
  shared budget hold under concurrency: without the reservation, every call of a
  parallel ``batch`` saw the same, not yet updated spend and all of them were sent.
* **While in flight** the floor stays reserved: from the check until the answer has
  been consumed (the last chunk of a stream), so concurrent calls see it.
* **After the answer** the reservation is settled: removed, and the answer's cost
  from its usage added.  A call that fails (an error, a cancelled task, an abandoned
  plan) releases its reservation and adds nothing: no answer, nothing to price.
* An answer **without usage** (a stream abandoned before its final usage chunk, or
  ``stream_usage=False``) cannot be priced, yet it was served: its floor is kept as
  its cost — the honest lower bound — and a warning says so once per model.  This is
  different from a model with **no known price** (a new model, a LoRA adapter): its
  calls are let through with a floor of 0, are not counted, and a warning says so
  once per model.

The guard is a *lower-bound* guard, not a hard cap: a call's output is unknown when
it is sent, so calls in flight together can overshoot the limit by at most their
output cost (and the cost of calls to unpriced models, which is never counted).
Concurrent calls with a floor of 0 (unpriced models) each pass while the spent and
reserved total is under the limit.  A priced call's floor counts at least one input
token, since every chat request carries some.  An optional warning threshold logs
once.

Spend is an *estimate* from the catalog's prices (:mod:`.usage`); W&B's billing page
is the source of truth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from functools import partial
from typing import Any

from langchain_wandb_inference.errors import WBBudgetExceededError
from langchain_wandb_inference.models import model_info
from langchain_wandb_inference.pipeline import Call, Plan, Step
from langchain_wandb_inference.usage import PER_TOKENS, estimate_cost

logger = logging.getLogger("langchain_wandb_inference")


def call_floor(model: str, prompt_tokens: int) -> float:
    """The least a call to ``model`` can cost: its prompt at the input price.

    At least one token is counted for a priced model — a chat request always carries
    some (the chat template) — so a tiny prompt cannot slip through a spent budget
    as free.  A model without a known price has a floor of 0.
    """
    info = model_info(model)
    if info is None or info.price is None:
        return 0.0
    return max(prompt_tokens, 1) * info.price.input / PER_TOKENS


class Budget:
    """A spending limit in USD, thread-safe, shareable across models.

    Safe to share between threads and asyncio tasks: every read-and-update of the
    spend happens under one lock, and nothing is awaited while holding it.
    """

    def __init__(self, limit_usd: float, *, warn_at: float | None = 0.8) -> None:
        if limit_usd <= 0:
            msg = f"Budget limit must be > 0 USD (got {limit_usd})."
            raise ValueError(msg)
        if warn_at is not None and not 0 < warn_at <= 1:
            msg = f"Budget warn_at is a fraction of the limit in (0, 1] (got {warn_at})."
            raise ValueError(msg)
        self.limit_usd = float(limit_usd)
        self.warn_at = warn_at
        self._spent = 0.0
        self._reserved = 0.0
        self._in_flight = 0
        self._warned = False
        self._unpriced: set[str] = set()
        self._without_usage: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        with self._lock:
            spent, reserved = self._spent, self._reserved
        return (
            f"Budget(limit_usd={self.limit_usd}, spent_usd={spent:.6f}, "
            f"reserved_usd={reserved:.6f})"
        )

    @property
    def spent_usd(self) -> float:
        """Estimated USD spent so far through this budget (settled answers)."""
        with self._lock:
            return self._spent

    @property
    def reserved_usd(self) -> float:
        """USD held for calls in flight: the sum of their floors, until each is settled."""
        with self._lock:
            return self._reserved

    def reserve(self, model: str, prompt_tokens: int = 0) -> float:
        """Check and hold the call's floor atomically; return it for :meth:`settle`.

        Raises :class:`WBBudgetExceededError` when spent + reserved + floor reaches
        the limit (so a floor of 0 is refused too once the budget is used up).  The
        caller must pass the returned floor to exactly one of :meth:`settle` (an
        answer came back) or :meth:`release` (no answer).
        """
        floor = call_floor(model, prompt_tokens)
        with self._lock:
            self._refuse_if_full(model, floor)
            self._reserved += floor
            self._in_flight += 1
        return floor

    def release(self, floor: float) -> None:
        """Drop a reservation whose call got no answer (failed or cancelled)."""
        with self._lock:
            self._unreserve(floor)

    def settle(self, floor: float, model: str, usage: Mapping[str, Any] | None) -> None:
        """Replace a call's reservation by the cost of its answer from ``model``.

        ``model`` is the model that answered (a fallback's, possibly), ``usage`` its
        ``usage_metadata``.  Without usage the floor stands as the cost (the answer was
        served; its prompt is the least it cost).  For a model without a known price
        the floor also stands — 0 when the call was aimed at that model; the requested
        model's prompt price when a fallback without a price answered.
        """
        self._account(model, usage, floor, reserved=True)

    def record(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Add an answer's estimated cost, with no reservation to settle.

        For usage obtained outside the pipeline; without usage nothing is added.
        """
        self._account(model, usage, 0.0, reserved=False)

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Reserve the floor before sending; settle on the answer, release on failure.

        The answer is settled by a finalizer, not here, because a stream is only
        finished (and its usage known) after the pipeline has returned.  Any exception
        through ``proceed`` — including ``GeneratorExit`` when the plan is closed and
        ``CancelledError`` when an async caller is cancelled — releases the floor.
        Whoever drives the plan must call ``call.finish`` once the answer is consumed
        (the chat model does, for streams in a ``finally``), or the floor stays held.
        """
        floor = self.reserve(call.model, call.prompt_tokens)
        try:
            result = yield from proceed(call)
        except BaseException:
            self.release(floor)
            raise
        call.on_finish(partial(self.settle, floor))
        return result

    def _account(
        self, model: str, usage: Mapping[str, Any] | None, floor: float, *, reserved: bool
    ) -> None:
        """Add one answer's cost (its floor when it cannot be priced); warn once each."""
        info = model_info(model)
        unpriced = info is None or info.price is None
        cost = None if unpriced or not usage else estimate_cost(model, usage)
        with self._lock:
            if reserved:
                self._unreserve(floor)
            self._spent += floor if cost is None else cost
            if unpriced:
                first_unpriced, first_without_usage = model not in self._unpriced, False
                self._unpriced.add(model)
            else:
                first_unpriced = False
                first_without_usage = not usage and model not in self._without_usage
                if not usage:
                    self._without_usage.add(model)
            crossed = (
                self.warn_at is not None
                and not self._warned
                and self._spent >= self.warn_at * self.limit_usd
            )
            self._warned = self._warned or crossed
            spent = self._spent
        if first_unpriced:
            logger.warning(
                "W&B Inference budget: no price known for %s; its calls are not counted", model
            )
        if first_without_usage:
            logger.warning(
                "W&B Inference budget: an answer from %s reported no usage (stream closed "
                "early, or stream_usage=False); it is counted at its prompt's floor only, "
                "so its output is not counted",
                model,
            )
        if crossed:
            logger.warning(
                "W&B Inference budget: estimated spend $%.4f reached %d%% of $%.2f",
                spent,
                round(100 * (self.warn_at or 0)),
                self.limit_usd,
            )

    def _refuse_if_full(self, model: str, floor: float) -> None:
        """Raise unless spent + reserved + floor stays under the limit (lock held)."""
        if self._spent + self._reserved + floor < self.limit_usd:
            return
        held = (
            f" and ${self._reserved:.6f} is held for {self._in_flight} call(s) in flight"
            if self._in_flight
            else ""
        )
        least = f"; this call's prompt costs at least ${floor:.6f}" if floor else ""
        message = (
            f"Budget exceeded: an estimated ${self._spent:.6f} of the ${self.limit_usd:.6f} "
            f"budget is spent{held}{least}, so no request was sent to model {model!r}. "
            "Raise the limit (budget_usd=... "
            "or Budget(limit_usd=...)) or start a new budget. The spend is estimated from "
            "catalog prices; W&B's Billing page is authoritative."
        )
        raise WBBudgetExceededError(
            spent_usd=self._spent, budget_usd=self.limit_usd, model=model, message=message
        )

    def _unreserve(self, floor: float) -> None:
        """Drop one call's floor from the reservations (lock held)."""
        self._in_flight = max(0, self._in_flight - 1)
        # Float sums drift: with nothing in flight, the reservation is exactly zero.
        self._reserved = self._reserved - floor if self._in_flight else 0.0
