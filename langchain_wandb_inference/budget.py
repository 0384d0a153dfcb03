"""Budget guard: stop calling once the estimated spend reaches a limit.

``ChatWBInference(budget_usd=5)`` gives one model its own budget; a :class:`Budget`
passed as ``budget=`` is shared by every model (and thread) that holds it.  Before a
request is sent the guard adds the cheapest the call can cost — its prompt at the
model's input price — to what was spent; if that reaches the limit the call fails
with :class:`~langchain_wandb_inference.errors.WBBudgetExceededError` and no request
leaves the machine.  After the answer, its real usage is added.  An optional warning
threshold logs once.

Spend is an *estimate* from the catalog's prices (:mod:`.usage`); W&B's billing page
is the source of truth.  Calls to models without a known price are let through,
and a warning says they are not counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from langchain_wandb_inference.errors import WBBudgetExceededError
from langchain_wandb_inference.models import model_info
from langchain_wandb_inference.pipeline import Call, Plan, Step
from langchain_wandb_inference.usage import PER_TOKENS, estimate_cost

logger = logging.getLogger("langchain_wandb_inference")


class Budget:
    """A spending limit in USD, thread-safe, shareable across models."""

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
        self._warned = False
        self._unpriced: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Budget(limit_usd={self.limit_usd}, spent_usd={self.spent_usd:.6f})"

    @property
    def spent_usd(self) -> float:
        """Estimated USD spent so far through this budget."""
        with self._lock:
            return self._spent

    def check(self, model: str, prompt_tokens: int = 0) -> None:
        """Raise if this call would reach the limit; its prompt alone is the floor."""
        info = model_info(model)
        floor = 0.0
        if info is not None and info.price is not None:
            floor = prompt_tokens * info.price.input / PER_TOKENS
        with self._lock:
            spent = self._spent
        if spent + floor >= self.limit_usd:
            raise WBBudgetExceededError(spent_usd=spent, budget_usd=self.limit_usd)

    def record(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Add an answer's estimated cost; warn once at the threshold."""
        cost = estimate_cost(model, usage) if usage else None
        with self._lock:
            if cost is None:
                first_time = model not in self._unpriced
                self._unpriced.add(model)
            else:
                first_time = False
                self._spent += cost
            crossed = (
                self.warn_at is not None
                and not self._warned
                and self._spent >= self.warn_at * self.limit_usd
            )
            self._warned = self._warned or crossed
            spent = self._spent
        if first_time:
            logger.warning(
                "W&B Inference budget: no price known for %s; its calls are not counted", model
            )
        if crossed:
            logger.warning(
                "W&B Inference budget: estimated spend $%.4f reached %d%% of $%.2f",
                spent,
                round(100 * (self.warn_at or 0)),
                self.limit_usd,
            )

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Refuse before sending once the budget is spent; count the answer after."""
        self.check(call.model, call.prompt_tokens)
        result = yield from proceed(call)
        call.on_finish(self.record)
        return result
