"""Budget guard: stop calling once the estimated spend reaches a limit.

``ChatWBInference(budget_usd=5)`` gives one model its own budget; a :class:`Budget`
passed as ``budget=`` is shared by every model (and thread) that holds it.  A budget
with a ``name`` used by models with a ``redis_url`` is shared by every process using
that Redis: ``Budget(20.0, name="nightly-eval")`` in each worker is one budget.

How a call is counted, and why:

* **Before sending**, atomically, the guard *reserves* what the call is expected to
  cost — its prompt at the model's input price plus its expected output (``max_tokens``
  when set, else :func:`expected_output_tokens`) at the output price: the *floor*.  If
  what was spent, plus what calls in flight hold, plus this floor reaches the limit, the
  call fails with ``WBBudgetExceededError`` and no request leaves the machine.  Checking
  and reserving in one step is what makes a shared budget hold under concurrency: N
  parallel calls on a budget that fits k of them send k.
* **After the answer** the reservation is replaced by the answer's cost from its usage
  (an abandoned stream: from what arrived).  A call that fails sends nothing to price
  and releases its reservation.

The slack, documented: calls in flight together can overshoot the limit by the output
they produce beyond their expected output (a call cannot be priced before it answers),
and calls to models without a known price (a new model, a LoRA adapter) are let through
uncounted, with a warning once per model.  Spend is an *estimate* from the catalog's
prices; W&B's billing page is the source of truth.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import WBBudgetExceededError
from langchain_wandb_inference.models import model_info
from langchain_wandb_inference.policies._pipeline import Call, Defer, Plan, Step, Usage, io
from langchain_wandb_inference.policies._state import Ledger, LedgerView, LocalLedger, State
from langchain_wandb_inference.usage import PER_TOKENS, estimate_cost

logger = logging.getLogger("langchain_wandb_inference")

DEFAULT_OUTPUT_TOKENS = 256
"""Expected output of a call without ``max_tokens`` to a model that does not reason."""
REASONING_OUTPUT_TOKENS = 1024
"""Expected output of a call without ``max_tokens`` to a reasoning model."""


def expected_output_tokens(model: str, max_tokens: int | None) -> int:
    """What a call is expected to produce: ``max_tokens``, else a per-model default."""
    if max_tokens is not None:
        return max_tokens
    info = model_info(model)
    reasons = info is not None and info.is_reasoning
    return REASONING_OUTPUT_TOKENS if reasons else DEFAULT_OUTPUT_TOKENS


def call_floor(model: str, prompt_tokens: int, output_tokens: int) -> float:
    """The USD a call is expected to cost (0 for a model without a known price).

    At least one prompt token is counted: a chat request always carries some (the chat
    template), so a tiny prompt cannot slip through a spent budget as free.
    """
    info = model_info(model)
    if info is None or info.price is None:
        return 0.0
    price = info.price
    return (max(prompt_tokens, 1) * price.input + output_tokens * price.output) / PER_TOKENS


class Budget:
    """A spending limit in USD, shareable across models, threads and tasks.

    With a ``name``, also across processes: calls through models that coordinate
    through Redis (``redis_url``) count in the fleet-wide ledger of that name — spend
    and reservations — instead of this process's own.  Without one, or without Redis,
    the budget is this process's.
    """

    def __init__(
        self, limit_usd: float, *, warn_at: float | None = 0.8, name: str | None = None
    ) -> None:
        if not (_number(limit_usd) and math.isfinite(limit_usd) and limit_usd > 0):
            msg = f"Budget limit_usd must be a finite number of USD > 0 (got {limit_usd!r})."
            raise ValueError(msg)
        if warn_at is not None and not (_number(warn_at) and 0 < warn_at <= 1):
            msg = f"Budget warn_at is a fraction of the limit in (0, 1] or None (got {warn_at!r})."
            raise ValueError(msg)
        if name is not None and not (isinstance(name, str) and name.strip()):
            msg = f"Budget name must be a non-empty string or None (got {name!r})."
            raise ValueError(msg)
        self.limit_usd = float(limit_usd)
        self.warn_at = warn_at
        self.name = name
        self._local = LocalLedger()
        self.ledger: Ledger = self._local
        """Where the numbers are kept: in-process, or the fleet's once a named budget joined it."""
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        view = self.ledger.view()
        named = f", name={self.name!r}" if self.name is not None else ""
        return (
            f"Budget(limit_usd={self.limit_usd}{named}, spent_usd={view.spent:.6f}, "
            f"reserved_usd={view.reserved:.6f})"
        )

    def ledger_in(self, state: State) -> Ledger:
        """The ledger a call under ``state`` counts in.

        A named budget joins the fleet's ledger the first time a model sharing its state
        through Redis uses it; from then on every call through it in this process counts
        there, and ``spent_usd`` reads the fleet's spend.  (In-process state keeps each
        budget's own ledger, so an unnamed budget never leaves the process.)
        """
        if self.name is not None and self.ledger is self._local:
            with self._lock:
                if self.ledger is self._local:
                    self.ledger = state.ledger(self.name, self._local)
        return self.ledger

    @property
    def spent_usd(self) -> float:
        """Estimated USD spent so far through this budget (settled answers)."""
        return self.ledger.view().spent

    @property
    def reserved_usd(self) -> float:
        """USD held for calls in flight: the sum of their floors, until each is settled."""
        return self.ledger.view().reserved

    def record(self, model: str, usage: Usage | None) -> None:
        """Add an answer's estimated cost, obtained outside the pipeline."""
        self._after(self.ledger.add(self.cost(model, usage, 0.0)))

    def cost(self, model: str, usage: Usage | None, floor: float) -> float:
        """The answer's cost from its usage; the floor when it cannot be priced."""
        info = model_info(model)
        if info is None or info.price is None:
            self._warn_once(model, f"no price is known for {model}; its calls are not counted")
            return floor
        if not usage:
            return floor
        return estimate_cost(model, usage) or 0.0

    def _after(self, spent: float) -> None:
        """Warn once when the spend crosses ``warn_at`` of the limit."""
        if self.warn_at is not None and spent >= self.warn_at * self.limit_usd:
            self._warn_once(
                "",
                f"estimated spend ${spent:.4f} reached {self.warn_at:.0%} of ${self.limit_usd:.2f}",
            )

    def _warn_once(self, key: str, text: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        logger.warning("W&B Inference budget: %s", text)

    def refusal(self, model: str, floor: float, seen: LedgerView) -> WBBudgetExceededError:
        """The error for a call that does not fit, with the numbers that decided it."""
        held = (
            f" and ${seen.reserved:.6f} is held for {seen.in_flight} call(s) in flight"
            if seen.in_flight
            else ""
        )
        least = f"; this call is expected to cost ${floor:.6f}" if floor else ""
        return WBBudgetExceededError(
            model=model,
            spent_usd=seen.spent,
            budget_usd=self.limit_usd,
            hints=(
                f"An estimated ${seen.spent:.6f} of the ${self.limit_usd:.6f} budget is "
                f"spent{held}{least}.",
            ),
        )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class BudgetGuard:
    """The pipeline step of a :class:`Budget` for one call of a known size."""

    budget: Budget
    state: State
    prompt_tokens: int
    max_tokens: int | None

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Reserve the floor before sending; settle once the answer is consumed."""
        output = expected_output_tokens(call.model, self.max_tokens)
        floor = call_floor(call.model, self.prompt_tokens, output)
        ledger = self.budget.ledger_in(self.state)
        refused = yield io(ledger, "reserve", floor, self.budget.limit_usd)
        if refused is not None:
            raise self.budget.refusal(call.model, floor, refused)
        try:
            result = yield from proceed(call)
        except BaseException:  # no answer: nothing to price
            ledger.settle(floor, 0.0)
            raise
        yield Defer(_Reservation(self.budget, ledger, floor))
        return result


@dataclass
class _Reservation:
    """Settles one call's floor, in the ledger that holds it, once its answer is known."""

    budget: Budget
    ledger: Ledger
    floor: float

    def progress(self, reading: bool) -> None:
        """Nothing to do while a stream is read."""

    def finish(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Replace the floor by the answer's cost (``model`` is who answered)."""
        cost = self.budget.cost(model, usage, self.floor)
        self.budget._after(self.ledger.settle(self.floor, cost))

    async def afinish(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Async twin of :meth:`finish`."""
        cost = self.budget.cost(model, usage, self.floor)
        self.budget._after(await self.ledger.asettle(self.floor, cost))
