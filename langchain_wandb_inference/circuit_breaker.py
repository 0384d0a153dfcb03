"""Circuit breaker: stop sending to a model that keeps failing, then probe it.

After ``failure_threshold`` consecutive transient failures (500, 503, timeout, lost
connection) of one model at one base URL, the circuit opens: calls to that model
fail at once with :class:`~langchain_wandb_inference.errors.WBCircuitOpenError`
without a request, which the fallback policy turns into an immediate hand-over to
the next model.  After ``cooldown`` seconds one probe request is let through; its
outcome closes the circuit or opens it for another cooldown.

Circuits are shared by every ``ChatWBInference`` in the process (they describe the
service, not an instance), and are thread- and asyncio-safe: state changes happen
under a lock that is never held across I/O.  :func:`reset_circuits` clears them
(for tests).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from langchain_wandb_inference.errors import (
    WBCircuitOpenError,
    WBConnectionError,
    WBDeadlineExceededError,
    WBInferenceError,
    WBOverloadedError,
    WBServerError,
    WBTimeoutError,
)
from langchain_wandb_inference.pipeline import Call, Plan, Step

_FAILURES = (WBServerError, WBOverloadedError, WBTimeoutError, WBConnectionError)


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


_lock = threading.Lock()
_circuits: dict[tuple[str, str], _Circuit] = {}


def reset_circuits() -> None:
    """Close every circuit (test helper: isolates tests that script failures)."""
    with _lock:
        _circuits.clear()


@dataclass(frozen=True)
class CircuitBreaker:
    """Skip a model for ``cooldown`` seconds after ``failure_threshold`` transient failures."""

    failure_threshold: int = 5
    cooldown: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cooldown < 0:
            msg = (
                "CircuitBreaker needs failure_threshold >= 1 and cooldown >= 0 "
                f"(got {self.failure_threshold}, {self.cooldown}); "
                "use circuit_breaker=None to disable it."
            )
            raise ValueError(msg)

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Refuse at once while open; otherwise send and record the verdict."""
        key = (call.base_url, call.model)
        probe = self._admit(key)
        try:
            result = yield from proceed(call)
        except WBDeadlineExceededError:
            self._no_verdict(key, probe)  # our own deadline, not the service's health
            raise
        except _FAILURES:
            self._record(key, failed=True)
            raise
        except WBInferenceError:
            self._record(key, failed=False)  # the service answered (4xx): it is up
            raise
        except BaseException:
            self._no_verdict(key, probe)  # the caller gave up
            raise
        self._record(key, failed=False)
        return result

    def _admit(self, key: tuple[str, str]) -> bool:
        """Let the request through (returning whether it is the probe) or raise."""
        with _lock:
            circuit = _circuits.setdefault(key, _Circuit())
            if circuit.opened_at is None:
                return False
            waited = time.monotonic() - circuit.opened_at
            if waited >= self.cooldown and not circuit.probing:
                circuit.probing = True
                return True
            retry_in = max(0.0, self.cooldown - waited)
        raise WBCircuitOpenError(model=key[1], base_url=key[0], retry_in=retry_in)

    def _no_verdict(self, key: tuple[str, str], probe: bool) -> None:
        """Nothing was learnt about the model: if this was the probe, let another go."""
        if probe:
            with _lock:
                _circuits[key].probing = False

    def _record(self, key: tuple[str, str], *, failed: bool) -> None:
        with _lock:
            circuit = _circuits.setdefault(key, _Circuit())
            circuit.probing = False
            if not failed:
                circuit.failures, circuit.opened_at = 0, None
                return
            circuit.failures += 1
            if circuit.opened_at is not None or circuit.failures >= self.failure_threshold:
                circuit.opened_at = time.monotonic()
