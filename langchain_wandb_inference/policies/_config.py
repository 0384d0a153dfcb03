"""Process-wide switches of the policies: only what tests need to turn off.

As in *stamina*, one switch makes a test suite fast and deterministic without touching
the code under test: :func:`set_testing` (also ``langchain_wandb_inference.testing``).
"""

from __future__ import annotations

from langchain_wandb_inference.policies._state import reset_state

testing_attempts: int | None = None
"""When set, every retry policy makes at most this many attempts and never waits."""


def set_testing(testing: bool = True, *, attempts: int = 1) -> None:
    """Switch test mode on (or off): ``attempts`` attempts, no waits, fresh state.

    On: every ``RetryPolicy`` makes at most ``attempts`` attempts and never sleeps
    between them.  On or off: circuits, concurrency gates and budget reservations start
    afresh, so one test's failures cannot open a circuit for the next.
    """
    global testing_attempts
    if testing and not (isinstance(attempts, int) and attempts >= 1):
        msg = f"set_testing(attempts=...) must be an integer >= 1 (got {attempts!r})."
        raise ValueError(msg)
    testing_attempts = attempts if testing else None
    reset_state()
