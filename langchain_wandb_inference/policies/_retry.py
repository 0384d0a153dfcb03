"""Retry policy: retry what W&B says is transient, never what it says is final.

What is retried is the error's own decision (``is_retryable``, see ``errors``): a
concurrency 429, 500, 503, timeouts and connection failures.  Everything else — 401,
402 and the quota 429, 403, 404, 400/422, an open circuit, an exhausted budget, the
call's own deadline — costs exactly one request and reaches the caller at once.  An
error that hands over to a fallback model at once (503, say) is not retried when there
is a fallback model to hand it to.

Backoff is tenacity's (langchain-core already depends on it): exponential from
``initial_delay`` with full jitter, capped at ``max_delay``.  A ``Retry-After`` /
``retry-after-ms`` the service sends is honoured as sent, even beyond ``max_delay``
(which bounds only our own backoff), up to :data:`RETRY_AFTER_CEILING`; a wait that
would overrun the call's ``deadline``, or the ceiling, ends the retries at once.  The
SDK's own retries are off, so exactly one layer retries.

For tests: ``testing.set_testing()`` makes every policy a single attempt with no waits.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import tenacity

from langchain_wandb_inference.errors import Fallback, WBInferenceError
from langchain_wandb_inference.policies import _config
from langchain_wandb_inference.policies._pipeline import Call, Notify, Plan, Sleep, Step

logger = logging.getLogger("langchain_wandb_inference")

RETRY_AFTER_CEILING = 120.0
"""The longest ``Retry-After`` honoured, in seconds; a longer one fails the call at once."""


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
    """No backoff of ours waits longer than this (a server's ``Retry-After`` may)."""
    jitter: bool = True
    """Full jitter (a random wait up to the bound) so that clients spread out."""
    deadline: float | None = None
    """Seconds the whole call may take, retries, fallbacks and reading included."""
    _retrying: tenacity.Retrying = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            msg = (
                f"RetryPolicy.max_attempts must be an integer >= 1 (got {self.max_attempts!r}); "
                "use retry=None to disable retries."
            )
            raise ValueError(msg)
        for name in ("initial_delay", "max_delay"):
            if not _finite(getattr(self, name)) or getattr(self, name) < 0:
                msg = f"RetryPolicy.{name} must be a finite number >= 0 seconds."
                raise ValueError(msg)
        if self.deadline is not None and not (_finite(self.deadline) and self.deadline > 0):
            msg = f"RetryPolicy.deadline must be > 0 seconds or None (got {self.deadline!r})."
            raise ValueError(msg)
        wait_type = tenacity.wait_random_exponential if self.jitter else tenacity.wait_exponential
        retrying = tenacity.Retrying(
            wait=wait_type(multiplier=self.initial_delay, max=self.max_delay),
            stop=tenacity.stop_after_attempt(self.max_attempts),
        )
        object.__setattr__(self, "_retrying", retrying)

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Run ``proceed`` until it succeeds, fails for good, or time runs out."""
        state: tenacity.RetryCallState | None = None  # made on the first failure only
        while True:
            try:
                return (yield from proceed(call))
            except WBInferenceError as exc:
                state = state or tenacity.RetryCallState(self._retrying, None, (), {})
                delay = self._next_delay(state, call, exc)
                if delay is None:
                    raise
                logger.warning(
                    "W&B Inference: %s from %s (attempt %d of %d); retrying in %.2fs",
                    type(exc).__name__,
                    call.model,
                    state.attempt_number,
                    self._attempts(),
                    delay,
                )
                yield Notify(
                    "retry",
                    {"model": call.model, "error": type(exc).__name__, "retry_state": state},
                )
                yield Sleep(delay)
                state.attempt_number += 1

    def _attempts(self) -> int:
        return min(_config.testing_attempts or self.max_attempts, self.max_attempts)

    def _next_delay(
        self, state: tenacity.RetryCallState, call: Call, exc: WBInferenceError
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up now.

        Giving up records on the error how many attempts were made, or why a
        retryable error was not retried, so that its message says so.
        """
        if not exc.is_retryable:
            return None
        if exc.fallback is Fallback.AT_ONCE and call.fallback_to is not None:
            exc.annotate(not_retried=f"handed over to {call.fallback_to!r} at once")
            return None
        if state.attempt_number >= self._attempts():
            if state.attempt_number == 1:
                exc.annotate(attempts=1, not_retried="one attempt allowed (max_attempts=1)")
            else:
                exc.annotate(attempts=state.attempt_number)
            return None
        state.set_exception((type(exc), exc, exc.__traceback__))
        server_says = exc.retry_after
        if server_says is not None and server_says > RETRY_AFTER_CEILING:
            exc.annotate(
                not_retried=f"the service asked to wait {server_says:g}s, longer than "
                f"the {RETRY_AFTER_CEILING:g}s this client waits"
            )
            return None
        delay = server_says if server_says is not None else float(self._retrying.wait(state))
        if _config.testing_attempts is not None:
            delay = 0.0
        state.upcoming_sleep = delay
        left = call.remaining()
        if left is not None and delay >= left:
            exc.annotate(
                attempts=state.attempt_number,
                not_retried=f"the next attempt ({delay:.2f}s away) would overrun the deadline",
            )
            return None
        return delay


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
