"""get_wb_inference_callback over real HTTP to the emulator on 127.0.0.1.

The expected cost is worked out here from each response's own ``usage_metadata`` and
the contract's prices (§7, USD per 1M tokens), copied as literals — not by calling
``estimate_cost`` — so the handler is checked against an independent reckoning.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk

from langchain_wandb_inference import ChatWBInference
from langchain_wandb_inference.testing import Emulator, Fault
from langchain_wandb_inference.usage import get_wb_inference_callback

pytestmark = pytest.mark.emulator

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
DS_PRO = "deepseek-ai/DeepSeek-V4-Pro-0813"
LORA = "wandb-artifact:///team/project/name:v1"

# Contract §7: input / output / cached input, USD per 1M tokens (None: no cached price).
PRICES: dict[str, tuple[float, float, float | None]] = {
    LLAMA_8B: (0.22, 0.22, None),
    DS_PRO: (1.31, 3.96, 0.044),
}

PROMPT = "Name three colours of the rainbow, briefly."


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def chat(emu: Emulator, model: str, **kwargs: Any) -> ChatWBInference:
    return ChatWBInference(model=model, base_url=emu.base_url, api_key="emulator-key", **kwargs)


def hand_cost(model: str, usage: Mapping[str, Any]) -> float:
    """USD for one response at the contract's prices; cached input at its own price."""
    price_in, price_out, price_cached = PRICES[model]
    cached = usage.get("input_token_details", {}).get("cache_read", 0)
    fresh = usage["input_tokens"] - cached
    cached_rate = price_in if price_cached is None else price_cached
    return float(fresh * price_in + cached * cached_rate + usage["output_tokens"] * price_out) / 1e6


def streamed(chunks: Iterator[AIMessageChunk]) -> AIMessageChunk:
    total: AIMessageChunk | None = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    assert total is not None
    return total


async def astreamed(chunks: AsyncIterator[AIMessageChunk]) -> AIMessageChunk:
    total: AIMessageChunk | None = None
    async for chunk in chunks:
        total = chunk if total is None else total + chunk
    assert total is not None
    return total


def test_scripted_multi_model_run_matches_responses_and_prices(emu: Emulator) -> None:
    llama, pro, lora = chat(emu, LLAMA_8B), chat(emu, DS_PRO), chat(emu, LORA)
    answers: list[tuple[str, AIMessage]] = []

    async def async_part() -> None:
        answers.append((DS_PRO, await pro.ainvoke(PROMPT)))  # repeat prompt: cache hit
        answers.append((LORA, await lora.ainvoke(PROMPT)))
        answers.append((LLAMA_8B, await astreamed(llama.astream("Another question, streamed."))))
        answers.append((DS_PRO, await astreamed(pro.astream(PROMPT))))

    with get_wb_inference_callback() as cb:
        answers.append((LLAMA_8B, llama.invoke(PROMPT)))
        answers.append((DS_PRO, pro.invoke(PROMPT)))
        answers.append((LORA, streamed(lora.stream("A LoRA, streamed."))))
        asyncio.run(async_part())

    usages = [(model, msg.usage_metadata) for model, msg in answers]
    assert all(u is not None for _, u in usages)
    assert [msg.response_metadata["model_name"] for _, msg in answers] == [m for m, _ in answers]

    assert cb.successful_requests == len(answers) == 7
    assert cb.prompt_tokens == sum(u["input_tokens"] for _, u in usages if u)
    assert cb.completion_tokens == sum(u["output_tokens"] for _, u in usages if u)
    assert cb.total_tokens == sum(u["total_tokens"] for _, u in usages if u)
    cached = sum(u.get("input_token_details", {}).get("cache_read", 0) for _, u in usages if u)
    assert cb.prompt_tokens_cached == cached
    assert cb.by_model[DS_PRO].cached_input_tokens > 0, "the repeated prompt should hit the cache"

    expected = sum(hand_cost(m, u) for m, u in usages if u and m in PRICES)
    assert cb.total_cost == pytest.approx(expected, rel=1e-12)
    assert cb.total_cost > 0
    for model in PRICES:
        own = sum(hand_cost(m, u) for m, u in usages if u and m == model)
        assert cb.by_model[model].cost_usd == pytest.approx(own, rel=1e-12)

    # The LoRA adapter's tokens are counted, its cost is not guessed.
    lora_usage = [u for m, u in usages if u and m == LORA]
    assert cb.by_model[LORA].input_tokens == sum(u["input_tokens"] for u in lora_usage)
    assert cb.by_model[LORA].requests == 2
    assert cb.by_model[LORA].cost_usd is None
    assert cb.unpriced_models == {LORA}
    assert f"no known price: {LORA}" in repr(cb)


def test_calls_outside_the_block_are_not_counted(emu: Emulator) -> None:
    llama = chat(emu, LLAMA_8B)
    with get_wb_inference_callback() as cb:
        inside = llama.invoke(PROMPT)
    llama.invoke(PROMPT)
    assert inside.usage_metadata is not None
    assert cb.successful_requests == 1
    assert cb.total_tokens == inside.usage_metadata["total_tokens"]


def test_fallback_is_billed_to_the_model_that_answered(emu: Emulator) -> None:
    emu.always(DS_PRO, Fault.not_found(model=True))
    llm = chat(emu, DS_PRO, fallback_models=[LLAMA_8B])
    with get_wb_inference_callback() as cb:
        answer = llm.invoke(PROMPT)
    assert answer.usage_metadata is not None
    assert set(cb.by_model) == {LLAMA_8B}
    assert cb.successful_requests == 1
    assert cb.total_cost == pytest.approx(hand_cost(LLAMA_8B, answer.usage_metadata), rel=1e-12)
