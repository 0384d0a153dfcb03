"""Fallback policy: when a model cannot serve, send the same request to the next one.

The request is re-sent unchanged but for ``model`` — messages, bound tools,
structured-output schema and parameters travel with it, because the policy sits
inside the chat model instead of around it (``Runnable.with_fallbacks`` sits outside,
and silently drops ``bind_tools`` from the fallback).

Whether an error hands over, and when, is the error's own decision (``fallback``, see
``errors``): a model that *said* it cannot serve (503, 404, open circuit) hands over at
once; a 500, a timeout, a lost connection or a concurrency 429 after its retries; auth,
quota, permission and invalid-request errors never, since another model would fail the
same way.  The error raised carries ``history``: the models tried, in order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import Attempt, Fallback, WBInferenceError
from langchain_wandb_inference.policies._pipeline import Call, Notify, Plan, Step

logger = logging.getLogger("langchain_wandb_inference")


@dataclass(frozen=True)
class FallbackPolicy:
    """Try ``call.model``, then each of ``models`` in order."""

    models: tuple[str, ...]

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Run the rest of the pipeline per model until one answers."""
        order = [call.model, *(m for m in self.models if m != call.model)]
        history: list[Attempt] = []
        for model, nxt in zip(order, [*order[1:], None], strict=True):
            try:
                return (yield from proceed(call.for_model(model, fallback_to=nxt)))
            except WBInferenceError as exc:
                history.append(Attempt(model, type(exc).__name__, str(exc)))
                if exc.fallback is Fallback.NEVER or nxt is None:
                    exc.history = history
                    raise
                logger.warning(
                    "W&B Inference: %s from %s; falling back to %s", type(exc).__name__, model, nxt
                )
                yield Notify(
                    "fallback", {"from_model": model, "to_model": nxt, "error": type(exc).__name__}
                )
        raise AssertionError("unreachable: the last model raises or returns")
