"""The budget guard end to end: the call that would exceed the budget sends nothing."""

from __future__ import annotations

import asyncio

import pytest

from langchain_wandb_inference import Budget, ChatWBInference
from langchain_wandb_inference.errors import WBBudgetExceededError
from langchain_wandb_inference.testing import Emulator

MODEL = "meta-llama/Llama-3.1-8B-Instruct"  # $0.22 / $0.22 per 1M tokens


def make(emu: Emulator, **kwargs: object) -> ChatWBInference:
    params: dict[str, object] = {
        "model": MODEL,
        "api_key": "emulator-key",
        "base_url": emu.base_url,
    }
    return ChatWBInference(**{**params, **kwargs})


def test_budget_stops_before_sending() -> None:
    with Emulator() as emu:
        # About 90 tokens' worth; each call reserves its prompt and max_tokens (~24 tokens).
        llm = make(emu, budget_usd=0.00002, max_tokens=20)
        spent_calls = 0
        with pytest.raises(WBBudgetExceededError) as info:
            for _ in range(20):
                llm.invoke("Tell me something.")
                spent_calls += 1
        assert spent_calls >= 1
        assert emu.count() == spent_calls  # the refused call sent no request
        assert info.value.spent_usd >= 0.00002 or info.value.spent_usd > 0


def test_big_prompt_refused_with_zero_requests() -> None:
    with Emulator() as emu:
        llm = make(emu, budget_usd=0.001)
        with pytest.raises(WBBudgetExceededError):
            llm.invoke("word " * 20_000)  # ~25k tokens of prompt alone: over $0.001
        assert emu.count() == 0


def test_shared_budget_counts_streams_and_async() -> None:
    with Emulator() as emu:
        budget = Budget(1.0)
        llama = make(emu, budget=budget)
        oss = make(emu, model="openai/gpt-oss-20b", budget=budget)  # $0.03 / $0.13
        answers = [llama.invoke("a")]
        streamed = list(oss.stream("b"))
        total = streamed[0]
        for chunk in streamed[1:]:
            total = total + chunk
        answers.append(total)
        answers.append(asyncio.run(llama.ainvoke("c")))
        prices = [(0.22, 0.22), (0.03, 0.13), (0.22, 0.22)]
        expected = 0.0
        for answer, (p_in, p_out) in zip(answers, prices, strict=True):
            usage = answer.usage_metadata
            assert usage is not None
            cached = usage.get("input_token_details", {}).get("cache_read", 0)
            assert cached == 0  # neither model has a cached price in the emulator
            expected += (usage["input_tokens"] * p_in + usage["output_tokens"] * p_out) / 1e6
        assert budget.spent_usd == pytest.approx(expected)


def test_parallel_batch_sends_only_what_the_shared_budget_fits() -> None:
    """8 calls of a batch in parallel: only the floors that fit are sent, the rest refused.

    Each call is ~4 prompt tokens and at most 4 output tokens, a floor of ~$0.0000018;
    $0.000004 fits two.  Before reservations all 8 saw a spend of 0 while the others were
    in flight, and all were sent.
    """
    with Emulator(latency=0.2) as emu:
        llm = make(emu, budget=Budget(0.000004), max_retries=0, max_tokens=4)
        answers = llm.batch(
            ["Tell me something."] * 8, config={"max_concurrency": 8}, return_exceptions=True
        )
        refused = [a for a in answers if isinstance(a, WBBudgetExceededError)]
        assert emu.count() == 8 - len(refused)
        assert 1 <= emu.count() <= 2
        assert llm.budget is not None
        assert llm.budget.reserved_usd == 0
