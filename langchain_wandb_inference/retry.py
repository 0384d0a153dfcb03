"""Retry policy: retry what W&B says is transient, never what it says is final.

Retried: a concurrency 429, 500, 503, timeouts and connection failures (errors whose
``is_retryable`` is true).  Never retried: 401, 402 and the quota 429, 403, 404,
400/422, an open circuit, an exhausted budget — each of those costs exactly one
request and reaches the caller at once.

Backoff is tenacity's (langchain-core already depends on it): exponential from
``initial_delay`` with full jitter, capped at ``max_delay``; a ``Retry-After`` /
``retry-after-ms`` header wins when the service sends one.  ``deadline`` bounds the
whole call, across retries and fallback models.  The SDK's own retries are switched
off by the chat model, so exactly one layer retries.  A ``Retry-After`` longer than
``max_delay`` ends the retries at once rather than sleeping that long.

Testing helper: ``RetryPolicy(max_attempts=1)`` or ``retry=None`` turns retries off;
``RetryPolicy(initial_delay=0)`` keeps the attempt count and drops the waits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import tenacity

from langchain_wandb_inference.errors import WBInferenceError, retry_after_seconds
from langchain_wandb_inference.pipeline import Call, Notify, Plan, Sleep, Step

logger = logging.getLogger("langchain_wandb_inference")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, a transient failure is retried.

    Defaults follow W&B's own advice: three attempts, backoff from one second.
    """

    max_attempts: int = 3
    """Attempts per model, the first included (1 = no retry)."""
    initial_delay: float = 1.0
    """Upper bound of the first backoff, in seconds (doubling afterwards)."""
    max_delay: float = 30.0
    """No single backoff waits longer than this."""
    jitter: bool = True
    """Full jitter (a random wait up to the bound) so that clients spread out."""
    deadline: float | None = None
    """Seconds the whole call may take, retries and fallbacks included."""
    _retrying: tenacity.Retrying = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = (
                f"RetryPolicy.max_attempts must be >= 1 (got {self.max_attempts}); "
                "use retry=None to disable retries."
            )
            raise ValueError(msg)
        if self.initial_delay < 0 or self.max_delay < 0:
            msg = "RetryPolicy delays must be >= 0 seconds."
            raise ValueError(msg)
        if self.deadline is not None and self.deadline <= 0:
            msg = f"RetryPolicy.deadline must be > 0 seconds or None (got {self.deadline})."
            raise ValueError(msg)
        wait_type = tenacity.wait_random_exponential if self.jitter else tenacity.wait_exponential
        retrying = tenacity.Retrying(
            wait=wait_type(multiplier=self.initial_delay, max=self.max_delay),
            stop=tenacity.stop_after_attempt(self.max_attempts),
        )
        object.__setattr__(self, "_retrying", retrying)

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Run ``proceed`` until it succeeds, fails for good, or time runs out."""
        state = tenacity.RetryCallState(self._retrying, None, (), {})
        while True:
            try:
                return (yield from proceed(call))
            except WBInferenceError as exc:
                delay = self._next_delay(state, call, exc)
                if delay is None:
                    raise
                logger.warning(
                    "W&B Inference: %s from %s (attempt %d of %d); retrying in %.2fs",
                    type(exc).__name__,
                    call.model,
                    state.attempt_number,
                    self.max_attempts,
                    delay,
                )
                yield Notify(
                    "retry",
                    {"model": call.model, "error": type(exc).__name__, "retry_state": state},
                )
                yield Sleep(delay)
                state.attempt_number += 1

    def _next_delay(
        self, state: tenacity.RetryCallState, call: Call, exc: WBInferenceError
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up now."""
        if not getattr(exc, "is_retryable", False) or isinstance(exc, call.hand_over):
            return None
        if self._retrying.stop(state):
            return None
        state.set_exception((type(exc), exc, exc.__traceback__))
        server_says = retry_after_seconds(exc)
        if server_says is not None and server_says > self.max_delay:
            return None  # asked to wait longer than we ever would: fail now, not in an hour
        delay = server_says if server_says is not None else float(self._retrying.wait(state))
        state.upcoming_sleep = delay
        left = call.remaining()
        if left is not None and delay >= left:
            return None
        return delay
