"""The budget guard under concurrency and on every way a call can end.

The real pipeline driver (``run`` / ``arun``) runs the real ``BudgetGuard``; the
transport is a local function, so nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from langchain_wandb_inference import errors
from langchain_wandb_inference.policies import Budget
from langchain_wandb_inference.policies._budget import (
    DEFAULT_OUTPUT_TOKENS,
    BudgetGuard,
    call_floor,
    expected_output_tokens,
)
from langchain_wandb_inference.policies._pipeline import Call, Notify, arun, compose, run
from langchain_wandb_inference.policies._state import LOCAL

URL = "https://api.inference.wandb.ai/v1"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"  # 0.22 / 0.22 USD per 1M tokens
GPT_OSS = "openai/gpt-oss-20b"  # a reasoning model
UNPRICED = "wandb-artifact:///team/project/adapter:v1"
FLOOR_1K = 1_000 * 0.22 / 1_000_000  # a 1,000-token call to LLAMA (prompt + output)


def ignore(_: Notify) -> None:
    pass


def call_once(
    budget: Budget,
    send: Any,
    *,
    model: str = LLAMA,
    prompt_tokens: int = 500,
    max_tokens: int | None = 500,
    usage: Mapping[str, Any] | None = None,
) -> Any:
    """One call through the pipeline, finished the way the chat model finishes it."""
    call = Call(model=model, base_url=URL)
    guard = BudgetGuard(budget, LOCAL, prompt_tokens, max_tokens)
    result, finish = run(compose([guard])(call), send, ignore)
    finish(model, usage)
    return result


# -- the floor -----------------------------------------------------------------------


def test_the_floor_is_the_prompt_and_the_expected_output() -> None:
    assert call_floor(LLAMA, 600, 400) == pytest.approx(FLOOR_1K)
    assert expected_output_tokens(LLAMA, 77) == 77  # max_tokens when set
    assert expected_output_tokens(LLAMA, None) == DEFAULT_OUTPUT_TOKENS
    assert expected_output_tokens(GPT_OSS, None) > DEFAULT_OUTPUT_TOKENS  # it reasons first
    assert call_floor(UNPRICED, 10_000, 10_000) == 0.0


def test_tiny_prompt_to_a_priced_model_still_has_a_floor() -> None:
    """A prompt estimated at 0 tokens counts one token, so a spent budget refuses it."""
    budget = Budget(1e-7)  # less than one LLAMA token
    sends: list[Call] = []
    with pytest.raises(errors.WBBudgetExceededError):
        call_once(budget, sends.append, prompt_tokens=0, max_tokens=0)
    assert sends == []
    assert call_floor(LLAMA, 0, 0) == pytest.approx(0.22 / 1_000_000)


# -- concurrency ----------------------------------------------------------------------


def test_parallel_calls_send_only_what_the_budget_fits() -> None:
    """32 threads at once on a budget that fits 4 calls: 4 requests, 28 refusals.

    Before reservations every thread saw the same, not yet updated spend while the
    others were in flight, and all were sent (77x the limit, with a floor of the
    prompt alone at 4 characters a token).
    """
    budget = Budget(4.5 * FLOOR_1K)
    threads = 32
    start = threading.Barrier(threads)
    lock = threading.Lock()
    sent: list[str] = []
    refused: list[errors.WBBudgetExceededError] = []
    unexpected: list[BaseException] = []

    def send(call: Call) -> str:
        with lock:
            sent.append(call.model)
        time.sleep(0.05)  # in flight while the other threads check
        return "ok"

    def worker() -> None:
        start.wait()
        try:
            # The answer costs exactly its floor, so the count does not depend on timing.
            call_once(budget, send, usage={"input_tokens": 500, "output_tokens": 500})
        except errors.WBBudgetExceededError as exc:
            with lock:
                refused.append(exc)
        except BaseException as exc:
            with lock:
                unexpected.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)

    assert unexpected == []
    assert len(sent) == 4
    assert len(refused) == threads - 4
    assert budget.spent_usd == pytest.approx(4 * FLOOR_1K)
    assert budget.reserved_usd == 0


def test_in_flight_reservation_blocks_the_next_call() -> None:
    """A call in flight holds its floor: the next call sees it, the refusal says so."""
    budget = Budget(1.5 * FLOOR_1K)
    sending, release = threading.Event(), threading.Event()

    def slow(call: Call) -> str:
        sending.set()
        release.wait(10)
        return "ok"

    first = threading.Thread(target=call_once, args=(budget, slow))
    first.start()
    assert sending.wait(10)
    assert budget.reserved_usd == pytest.approx(FLOOR_1K)
    sends: list[Call] = []
    with pytest.raises(errors.WBBudgetExceededError, match="in flight"):
        call_once(budget, sends.append)
    assert sends == []
    release.set()
    first.join(10)


# -- release: no answer, no cost ------------------------------------------------------


def test_failed_calls_release_their_reservation() -> None:
    """Failures add nothing and hold nothing: later calls still fit."""
    budget = Budget(2.5 * FLOOR_1K)  # two floors fit
    attempts: list[str] = []

    def failing(call: Call) -> str:
        attempts.append(call.model)
        raise RuntimeError("connection reset")

    for _ in range(5):  # more failures than floors fit: each must give its floor back
        with pytest.raises(RuntimeError, match="connection reset"):
            call_once(budget, failing)
    assert len(attempts) == 5
    assert budget.reserved_usd == 0
    assert budget.spent_usd == 0
    assert call_once(budget, lambda call: "ok") == "ok"


def test_closed_plan_releases_its_reservation() -> None:
    """An abandoned plan (GeneratorExit at the pending send) gives its floor back."""
    budget = Budget(1.0)
    plan = compose([BudgetGuard(budget, LOCAL, 500, 500)])(Call(model=LLAMA, base_url=URL))
    reserve = next(plan)
    assert plan.send(reserve.run()).__class__.__name__ == "Send"
    assert budget.reserved_usd == pytest.approx(FLOOR_1K)
    plan.close()
    assert budget.reserved_usd == 0
    assert budget.spent_usd == 0


async def test_cancelled_async_call_releases_its_reservation() -> None:
    """Cancelling the awaiting task throws CancelledError into the plan: floor released."""
    budget = Budget(1.0)
    in_flight = asyncio.Event()

    async def send(call: Call) -> str:
        in_flight.set()
        await asyncio.Event().wait()  # never answers
        return "unreachable"

    async def notify(_: Notify) -> None:
        pass

    plan = compose([BudgetGuard(budget, LOCAL, 500, 500)])(Call(model=LLAMA, base_url=URL))
    task = asyncio.create_task(arun(plan, send, notify))
    await in_flight.wait()
    assert budget.reserved_usd == pytest.approx(FLOOR_1K)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.reserved_usd == 0
    assert budget.spent_usd == 0


# -- settling: answers with and without usage, priced and not -------------------------


def test_answer_with_usage_replaces_the_floor_by_its_cost() -> None:
    budget = Budget(1.0)
    call_once(budget, lambda call: "ok", usage={"input_tokens": 1_200, "output_tokens": 800})
    assert budget.spent_usd == pytest.approx(2_000 * 0.22 / 1_000_000)
    assert budget.reserved_usd == 0


def test_answer_without_usage_costs_its_floor() -> None:
    budget = Budget(1.0)
    assert call_once(budget, lambda call: "ok", usage=None) == "ok"
    assert budget.spent_usd == pytest.approx(FLOOR_1K)
    assert budget.reserved_usd == 0


def test_unpriced_model_is_flagged_not_counted_and_refused_once_spent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A model without a price has floor 0: let through, flagged once, never counted.

    Once priced calls have used the budget up, it is refused like any other call.
    """
    budget = Budget(1_000 * FLOOR_1K)
    usage = {"input_tokens": 10, "output_tokens": 10}
    for _ in range(2):
        assert call_once(budget, lambda call: "ok", model=UNPRICED, usage=usage) == "ok"
    assert budget.spent_usd == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum(f"no price is known for {UNPRICED}" in m for m in messages) == 1

    budget.record(LLAMA, {"input_tokens": 1_000_000, "output_tokens": 0})  # over the limit
    sends: list[Call] = []
    with pytest.raises(errors.WBBudgetExceededError):
        call_once(budget, sends.append, model=UNPRICED, prompt_tokens=0)
    assert sends == []


def test_unpriced_fallback_answer_keeps_the_requested_models_floor() -> None:
    """Asked of a priced model, answered by one without a price: the floor stands."""
    budget = Budget(1.0)
    call = Call(model=LLAMA, base_url=URL)
    _, finish = run(compose([BudgetGuard(budget, LOCAL, 500, 500)])(call), lambda c: "ok", ignore)
    finish(UNPRICED, {"input_tokens": 1_000, "output_tokens": 500})
    assert budget.spent_usd == pytest.approx(FLOOR_1K)
    assert budget.reserved_usd == 0


def test_warns_once_at_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    budget = Budget(1.0, warn_at=0.5)
    usage = {"input_tokens": 1_500_000, "output_tokens": 1_000_000, "total_tokens": 2_500_000}
    budget.record(LLAMA, usage)  # 0.55 USD
    budget.record(LLAMA, {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    assert budget.spent_usd == pytest.approx(0.55, rel=1e-3)
    assert sum("reached 50%" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    ("limit", "warn_at"),
    [(0, 0.8), (-1, 0.8), (float("nan"), 0.8), (float("inf"), 0.8), (1, 0), (1, 1.5), ("1", 0.8)],
)
def test_bad_budgets_are_refused(limit: Any, warn_at: Any) -> None:
    with pytest.raises(ValueError, match="Budget"):
        Budget(limit, warn_at=warn_at)
