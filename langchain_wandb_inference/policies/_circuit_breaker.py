"""Circuit breaker: skip a model that keeps failing, while another model can serve.

Semantics are resilience4j's: the breaker looks at the outcomes of the last ``window``
*calls* (a call retried three times is one call) to one model at one base URL, and
opens when, with at least ``minimum_calls`` of them, the share that failed reaches
``failure_rate``.  Only failures that are evidence about the model count (the error's
``counts_against_circuit``: 5xx, timeouts, lost connections — not 4xx answers, which
prove it is up, nor the call's own deadline).  A request that keeps failing by itself
(one prompt the model cannot answer) counts once, so it never opens the circuit for
the other prompts.

While open, calls fail at once with ``WBCircuitOpenError`` and no request, which the
fallback policy turns into an immediate hand-over to the next model.  Without a next
model there is nowhere better to send the call, so it is **never refused**: it is sent,
a warning says the circuit is open, and its success closes the circuit.  After
``cooldown`` seconds ``probes`` calls are let through; a success closes the circuit, a
failure opens it for another cooldown.

Circuits are shared by every ``ChatWBInference`` of the process (they describe the
service, not an instance), thread- and asyncio-safe; with a coordination server, by
the whole fleet.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import WBCircuitOpenError, WBInferenceError
from langchain_wandb_inference.policies._pipeline import Call, Plan, Step, io
from langchain_wandb_inference.policies._state import (
    Admission,
    BreakerSettings,
    Outcome,
    State,
)

logger = logging.getLogger("langchain_wandb_inference")


@dataclass(frozen=True)
class CircuitBreaker:
    """Skip a model for ``cooldown`` seconds when too many of its recent calls failed."""

    failure_rate: float = 0.5
    """Share of failed calls in the window that opens the circuit (0 < rate <= 1)."""
    minimum_calls: int = 10
    """No verdict before this many calls are in the window."""
    window: int = 20
    """How many of the most recent calls are looked at."""
    cooldown: float = 30.0
    """Seconds the model is skipped before probes are let through."""
    probes: int = 1
    """Calls let through at once when the cooldown is over."""

    def __post_init__(self) -> None:
        problems = [
            ("failure_rate", 0 < self.failure_rate <= 1, "in (0, 1]"),
            ("minimum_calls", _count(self.minimum_calls), "an integer >= 1"),
            (
                "window",
                _count(self.window) and self.window >= self.minimum_calls,
                "an integer >= minimum_calls",
            ),
            ("cooldown", math.isfinite(self.cooldown) and self.cooldown >= 0, "seconds >= 0"),
            ("probes", _count(self.probes), "an integer >= 1"),
        ]
        for name, ok, accepted in problems:
            if not ok:
                msg = (
                    f"CircuitBreaker.{name} must be {accepted} (got {getattr(self, name)!r}); "
                    "use circuit_breaker=None to disable it."
                )
                raise ValueError(msg)

    @functools.cached_property
    def settings(self) -> BreakerSettings:
        """What the shared circuit needs to know (made once: it is read on every call)."""
        return BreakerSettings(
            self.failure_rate, self.minimum_calls, self.window, self.cooldown, self.probes
        )


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class Breaker:
    """The pipeline step of a :class:`CircuitBreaker`, over shared state."""

    breaker: CircuitBreaker
    state: State

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Refuse at once while open (when a fallback can serve); else send and record."""
        settings = self.breaker.settings
        circuit = self.state.circuit((call.base_url, call.model))
        admission = yield io(circuit, "admit", settings, call.fallback_to is not None)
        if not isinstance(admission, Admission):
            raise WBCircuitOpenError(
                model=call.model,
                base_url=call.base_url,
                retry_in=admission,
                retry_after=admission,
                hints=(
                    f"Too many recent calls to it at {call.base_url} failed (5xx, timeouts "
                    f"or lost connections); a probe is let through in {admission:.1f}s.",
                ),
            )
        if admission.kind == "forced":
            logger.warning(
                "W&B Inference: the circuit of %s is open, but no fallback model can serve: "
                "sending anyway",
                call.model,
            )

        try:
            result = yield from proceed(call)
        except WBInferenceError as exc:
            outcome = _outcome(exc)
            fingerprint = call.fingerprint() if outcome == "failure" else ""  # only to dedupe
            yield io(circuit, "record", settings, admission, call.id, fingerprint, outcome)
            raise
        except BaseException:  # the caller gave up (even a closed plan): nothing was learnt
            circuit.record(settings, admission, call.id, "", "none")
            raise
        yield io(circuit, "record", settings, admission, call.id, "", "success")
        return result


def _outcome(exc: WBInferenceError) -> Outcome:
    """A failure if it is evidence about the model; an answer (4xx) proves it is up."""
    if exc.counts_against_circuit:
        return "failure"
    return "success" if getattr(exc, "status_code", None) else "none"
