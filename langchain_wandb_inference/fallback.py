"""Fallback policy: when a model cannot serve, send the same request to the next one.

The request is re-sent unchanged but for ``model`` — messages, bound tools,
structured-output schema and parameters travel with it, because the policy sits
inside the chat model instead of around it (``Runnable.with_fallbacks`` sits outside,
and silently drops ``bind_tools`` from the fallback).

A model that *said* it cannot serve — overloaded (503), retired or unknown (404), or
whose circuit is open — hands over at once, with no backoff.  A 500, a timeout, a
lost connection or a concurrency 429 is first retried per the retry policy.  Auth,
quota, permission and invalid-request errors are the caller's to fix: they are
raised at once, since another model would fail the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import (
    WBCircuitOpenError,
    WBConcurrencyLimitError,
    WBConnectionError,
    WBInferenceError,
    WBModelNotFoundError,
    WBOverloadedError,
    WBServerError,
    WBTimeoutError,
)
from langchain_wandb_inference.pipeline import Attempt, Call, Notify, Plan, Step

logger = logging.getLogger("langchain_wandb_inference")

HAND_OVER_AT_ONCE: tuple[type[WBInferenceError], ...] = (
    WBOverloadedError,
    WBModelNotFoundError,
    WBCircuitOpenError,
)
HAND_OVER_AFTER_RETRIES: tuple[type[WBInferenceError], ...] = (
    WBServerError,
    WBTimeoutError,
    WBConnectionError,
    WBConcurrencyLimitError,
)
FALLBACK_WORTHY = (*HAND_OVER_AT_ONCE, *HAND_OVER_AFTER_RETRIES)


@dataclass(frozen=True)
class FallbackPolicy:
    """Try ``call.model``, then each of ``models`` in order."""

    models: tuple[str, ...]

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Run the rest of the pipeline per model until one answers."""
        *earlier, last = [call.model, *(m for m in self.models if m != call.model)]
        for index, model in enumerate(earlier):
            try:
                return (yield from proceed(call.for_model(model, hand_over=HAND_OVER_AT_ONCE)))
            except FALLBACK_WORTHY as exc:
                call.history.append(Attempt(model, str(exc), type(exc).__name__))
                nxt = [*earlier, last][index + 1]
                logger.warning(
                    "W&B Inference: %s from %s; falling back to %s", type(exc).__name__, model, nxt
                )
                yield Notify(
                    "fallback", {"from_model": model, "to_model": nxt, "error": type(exc).__name__}
                )
        try:
            return (yield from proceed(call.for_model(last, hand_over=())))
        except FALLBACK_WORTHY as exc:
            call.history.append(Attempt(last, str(exc), type(exc).__name__))
            exc.history = list(call.history)
            raise
