"""What the fleet tests' worker processes run (spawned: a fresh interpreter each).

Every worker builds its own ``ChatWBInference`` against the parent's emulator and
Redis, reports ``ready``, waits for ``go`` (so that all start together), and puts
its outcome on ``out``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import SecretStr

from langchain_wandb_inference import Budget, ChatWBInference, CircuitBreaker, errors

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
OTHER = "meta-llama/Llama-3.3-70B-Instruct"


def model(base_url: str, redis_url: str | None, **kwargs: Any) -> ChatWBInference:
    kwargs.setdefault("model", MODEL)
    return ChatWBInference(
        base_url=base_url, api_key=SecretStr("emulator-key"), redis_url=redis_url, **kwargs
    )


def batch(
    base_url: str,
    redis_url: str | None,
    prompts: int,
    cap: int | None,
    method: str,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """Send ``prompts`` prompts through ``batch`` or ``abatch``; report the errors' names."""
    llm = model(base_url, redis_url, max_concurrency=cap)
    inputs = [f"Prompt {i} of {id(llm)}: say hello." for i in range(prompts)]
    ready.release()
    go.wait()
    if method == "abatch":
        results = asyncio.run(llm.abatch(inputs, return_exceptions=True))
    else:
        results = llm.batch(inputs, return_exceptions=True)
    out.put([type(r).__name__ for r in results if isinstance(r, BaseException)])


def hold_a_stream(base_url: str, redis_url: str, lease_ttl: float, ready: Any) -> None:
    """Take the only slot with a stream, read one chunk, then never finish (until killed)."""
    from langchain_wandb_inference.policies import _redis

    _redis.LEASE_TTL = lease_ttl
    stream = model(base_url, redis_url, max_concurrency=1).stream("Count to one hundred.")
    next(stream)
    ready.set()
    time.sleep(3600)


def spend(
    base_url: str, redis_url: str, limit: float, calls: int, ready: Any, go: Any, out: Any
) -> None:
    """Call until the shared budget refuses (or ``calls`` answered); report the answers."""
    llm = model(base_url, redis_url, budget=Budget(limit, name="nightly-eval"))
    ready.release()
    go.wait()
    answered = 0
    for _ in range(calls):
        try:
            llm.invoke("The same prompt every time.")
        except errors.WBBudgetExceededError:
            break
        answered += 1
    out.put(answered)


def fail_calls(base_url: str, redis_url: str, prompts: list[str], out: Any) -> None:
    """Call a failing model once per prompt (no retries), with a small circuit window."""
    breaker = CircuitBreaker(minimum_calls=2, window=2, cooldown=600)
    llm = model(base_url, redis_url, retry=None, circuit_breaker=breaker)
    failures = []
    for prompt in prompts:
        try:
            llm.invoke(prompt)
        except errors.WBInferenceError as exc:
            failures.append(type(exc).__name__)
    out.put(failures)


def reserve_and_hang(redis_url: str, lease_ttl: float, ready: Any) -> None:
    """Reserve 9 of a budget of 10, then never settle (until killed)."""
    from langchain_wandb_inference.policies import _redis
    from langchain_wandb_inference.policies._state import LocalLedger

    _redis.LEASE_TTL = lease_ttl
    assert _redis.state_for(redis_url).ledger("b", LocalLedger()).reserve(9.0, 10.0) is None
    ready.set()
    time.sleep(3600)
