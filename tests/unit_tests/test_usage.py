"""WBInferenceCallbackHandler and get_wb_inference_callback, fed synthetic results.

Expected costs are worked out by hand from the contract's price table (§7, USD per 1M
tokens input / output / cached input), never by calling ``estimate_cost``, so a wrong
price or formula in the code shows up as a mismatch.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers import context as tracer_context

from langchain_wandb_inference import ChatWBInference
from langchain_wandb_inference.usage import (
    UNKNOWN_MODEL,
    ModelUsage,
    WBInferenceCallbackHandler,
    get_wb_inference_callback,
)
from tests.unit_tests.fakes import FakeWB, sse_response, stream_chunks

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"  # 0.22 / 0.22
LLAMA_70B = "meta-llama/Llama-3.3-70B-Instruct"  # 0.71 / 0.71, no cached price
DS_PRO = "deepseek-ai/DeepSeek-V4-Pro-0813"  # 1.31 / 3.96 / 0.044
LORA = "wandb-artifact:///team/project/name:v1"
UNKNOWN = "acme/brand-new-model"


def usage(inp: int, out: int, cached: int | None = None, reasoning: int = 0) -> UsageMetadata:
    meta = UsageMetadata(input_tokens=inp, output_tokens=out, total_tokens=inp + out)
    if cached is not None:
        meta["input_token_details"] = {"cache_read": cached}
    if reasoning:
        meta["output_token_details"] = {"reasoning": reasoning}
    return meta


def message(model: str | None, meta: UsageMetadata | None) -> AIMessage:
    return AIMessage(
        content="ok",
        usage_metadata=meta,
        response_metadata={"model_name": model} if model else {},
    )


def result(model: str | None, meta: UsageMetadata | None, **llm_output: Any) -> LLMResult:
    generation = ChatGeneration(message=message(model, meta))
    return LLMResult(generations=[[generation]], llm_output=llm_output or None)


def feed(handler: WBInferenceCallbackHandler, *results: LLMResult) -> None:
    for res in results:
        handler.on_llm_end(res)


# -- prices ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "meta", "expected"),
    [
        # (1000 + 500) * 0.22 / 1e6
        (LLAMA_8B, usage(1000, 500), 0.00033),
        # fresh 6000 * 1.31 + cached 4000 * 0.044 + out 2000 * 3.96 = 15956 / 1e6
        (DS_PRO, usage(10_000, 2000, cached=4000), 0.015956),
        # no cached price: all 2000 input tokens at 0.71, plus 100 output at 0.71
        (LLAMA_70B, usage(2000, 100, cached=500), 0.001491),
    ],
)
def test_cost_from_contract_prices(model: str, meta: UsageMetadata, expected: float) -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(model, meta))
    assert cb.total_cost == pytest.approx(expected, rel=1e-12)
    assert cb.by_model[model].cost_usd == pytest.approx(expected, rel=1e-12)
    assert cb.unpriced_models == set()


def test_tokens_add_up_across_models() -> None:
    cb = WBInferenceCallbackHandler()
    feed(
        cb,
        result(LLAMA_8B, usage(1000, 500)),
        result(DS_PRO, usage(10_000, 2000, cached=4000, reasoning=300)),
        result(LLAMA_8B, usage(10, 20)),
    )
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (11_010, 2520, 13_530)
    assert (cb.prompt_tokens_cached, cb.reasoning_tokens) == (4000, 300)
    assert cb.successful_requests == 3
    # 0.00033 + 0.015956 + 30 * 0.22 / 1e6
    assert cb.total_cost == pytest.approx(0.00033 + 0.015956 + 0.0000066, rel=1e-12)
    assert cb.by_model[LLAMA_8B] == ModelUsage(
        input_tokens=1010,
        output_tokens=520,
        cached_input_tokens=0,
        requests=2,
        cost_usd=pytest.approx(0.0003366, rel=1e-12),
    )


def test_cached_tokens_without_cached_price_are_still_counted_as_cached() -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(LLAMA_70B, usage(2000, 100, cached=500)))
    assert cb.prompt_tokens_cached == 500
    assert cb.by_model[LLAMA_70B].cached_input_tokens == 500


@pytest.mark.parametrize("model", [LORA, UNKNOWN])
def test_unpriced_models_count_tokens_but_never_cost(model: str) -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(LLAMA_8B, usage(1000, 500)), result(model, usage(7000, 3000)))
    assert cb.prompt_tokens == 8000
    assert cb.completion_tokens == 3500
    assert cb.successful_requests == 2
    assert cb.total_cost == pytest.approx(0.00033, rel=1e-12)  # the Llama call only
    assert cb.unpriced_models == {model}
    assert cb.by_model[model] == ModelUsage(
        input_tokens=7000, output_tokens=3000, cached_input_tokens=0, requests=1, cost_usd=None
    )
    assert f"no known price: {model}" in cb.summary()
    assert f"{model}: 1 requests, 7000 input (0 cached), 3000 output, no known price" in repr(cb)


# -- which model, and what is read ----------------------------------------------------


def test_answering_model_comes_from_the_message_not_llm_output() -> None:
    # With fallbacks the message names the model that answered.
    cb = WBInferenceCallbackHandler()
    feed(cb, result(DS_PRO, usage(100, 10), model_name=LLAMA_8B))
    assert set(cb.by_model) == {DS_PRO}


def test_llm_output_model_name_is_the_fallback() -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(None, usage(1000, 500), model_name=LLAMA_8B))
    assert set(cb.by_model) == {LLAMA_8B}
    assert cb.total_cost == pytest.approx(0.00033, rel=1e-12)


def test_no_model_name_at_all_is_unpriced_not_free() -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(None, usage(1000, 500)))
    assert cb.unpriced_models == {UNKNOWN_MODEL}
    assert cb.prompt_tokens == 1000
    assert cb.total_cost == 0.0
    assert cb.by_model[UNKNOWN_MODEL].cost_usd is None


def test_answer_without_usage_is_counted_and_flagged() -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(LLAMA_8B, None))
    assert cb.successful_requests == 1
    assert cb.requests_without_usage == 1
    assert cb.total_tokens == 0
    assert cb.by_model[LLAMA_8B].requests == 1
    assert "answers without usage: 1" in cb.summary()


def test_only_first_choice_is_counted() -> None:
    # With n > 1 every choice's message carries the whole response's usage.
    cb = WBInferenceCallbackHandler()
    choices = [ChatGeneration(message=message(LLAMA_8B, usage(1000, 500))) for _ in range(3)]
    feed(cb, LLMResult(generations=[choices]))
    assert (cb.prompt_tokens, cb.successful_requests) == (1000, 1)


def test_empty_result_counts_nothing() -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, LLMResult(generations=[]))
    assert cb.successful_requests == 0


# -- concurrency, copies, repr --------------------------------------------------------


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Switch threads every microsecond so an unlocked read-modify-write would race."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_switches")
def test_many_threads_lose_nothing() -> None:
    cb = WBInferenceCallbackHandler()
    threads, per_thread = 16, 1000
    models = [LLAMA_8B, DS_PRO, LORA]
    start = threading.Barrier(threads)

    def work(i: int) -> None:
        res = result(models[i % 3], usage(3, 2, cached=1))
        start.wait()
        for _ in range(per_thread):
            cb.on_llm_end(res)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    calls = threads * per_thread
    assert cb.successful_requests == calls
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (
        3 * calls,
        2 * calls,
        5 * calls,
    )
    assert cb.prompt_tokens_cached == calls
    assert sum(m.requests for m in cb.by_model.values()) == calls
    llama_calls = sum(per_thread for i in range(threads) if i % 3 == 0)
    ds_calls = sum(per_thread for i in range(threads) if i % 3 == 1)
    # Llama: 5 tokens at 0.22; DeepSeek: 2 fresh at 1.31 + 1 cached at 0.044 + 2 out at 3.96
    expected = (llama_calls * 5 * 0.22 + ds_calls * (2 * 1.31 + 0.044 + 2 * 3.96)) / 1e6
    assert cb.total_cost == pytest.approx(expected, rel=1e-9)


def test_copies_are_the_handler_itself() -> None:
    cb = WBInferenceCallbackHandler()
    assert copy.copy(cb) is cb
    assert copy.deepcopy(cb) is cb


def test_repr_reads_like_openai_callback() -> None:
    cb = WBInferenceCallbackHandler()
    feed(cb, result(LLAMA_8B, usage(1000, 500)), result(DS_PRO, usage(10_000, 2000, cached=4000)))
    assert repr(cb) == "\n".join(
        [
            "Tokens Used: 13500",
            "\tPrompt Tokens: 11000",
            "\t\tPrompt Tokens Cached: 4000",
            "\tCompletion Tokens: 2500",
            "\t\tReasoning Tokens: 0",
            "Successful Requests: 2",
            "Total Cost (USD): $0.01628600 (estimated from catalog prices)",
            f"{DS_PRO}: 1 requests, 10000 input (4000 cached), 2000 output, $0.01595600",
            f"{LLAMA_8B}: 1 requests, 1000 input (0 cached), 500 output, $0.00033000",
        ]
    )
    assert cb.always_verbose is True


# -- get_wb_inference_callback: the context-var hook ----------------------------------


def fake_llm(*answers: tuple[str, UsageMetadata]) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([message(m, u) for m, u in answers]))


def test_block_sees_every_call_and_only_inside() -> None:
    llm = fake_llm(
        (LLAMA_8B, usage(1000, 500)),
        (DS_PRO, usage(10_000, 2000, cached=4000)),
        (LLAMA_8B, usage(9, 9)),
    )
    with get_wb_inference_callback() as cb:
        llm.invoke("a")
        llm.invoke("b")
    llm.invoke("after the block")
    assert cb.successful_requests == 2
    assert cb.total_cost == pytest.approx(0.00033 + 0.015956, rel=1e-12)


def streaming_llm(words: list[str]) -> ChatWBInference:
    """ChatWBInference over an in-memory SSE answer whose last chunk carries the usage."""
    fake = FakeWB([sse_response(stream_chunks(words, model=LLAMA_8B))])
    return ChatWBInference(model=LLAMA_8B, api_key="wb-test-key", **fake.clients())


def test_stream_is_counted_once_with_final_usage() -> None:
    llm = streaming_llm(["a", "b", "c"])
    with get_wb_inference_callback() as cb:
        for _ in llm.stream("hi"):
            pass
    # The fake's usage chunk: 4 prompt tokens, one output token per word.
    assert (cb.successful_requests, cb.prompt_tokens, cb.completion_tokens) == (1, 4, 3)
    assert cb.total_cost == pytest.approx(7 * 0.22 / 1e6, rel=1e-12)


async def test_async_calls_tasks_and_astream_are_seen() -> None:
    llm = fake_llm(*[(LLAMA_8B, usage(1000, 500))] * 3)
    streaming = streaming_llm(["a", "b"])
    with get_wb_inference_callback() as cb:
        await llm.ainvoke("a")
        await asyncio.gather(llm.ainvoke("b"), asyncio.create_task(llm.ainvoke("c")))
        async for _ in streaming.astream("d"):
            pass
    assert cb.successful_requests == 4
    assert cb.prompt_tokens == 3 * 1000 + 4
    assert cb.total_cost == pytest.approx(3 * 0.00033 + 6 * 0.22 / 1e6, rel=1e-12)


def test_nested_blocks_and_the_outer_sees_all() -> None:
    llm = fake_llm(*[(LLAMA_8B, usage(1000, 500))] * 3)
    with get_wb_inference_callback() as outer:
        llm.invoke("a")
        with get_wb_inference_callback() as inner:
            llm.invoke("b")
        llm.invoke("c")
    assert inner.successful_requests == 1
    assert outer.successful_requests == 3
    assert outer.prompt_tokens == 3000  # inner's call counted once, not twice


def test_explicit_handler_inside_its_own_block_counts_once() -> None:
    llm = fake_llm((LLAMA_8B, usage(1000, 500)))
    with get_wb_inference_callback() as cb:
        llm.invoke("a", config={"callbacks": [cb]})
    assert cb.successful_requests == 1


def test_block_exited_by_an_exception_stops_counting() -> None:
    llm = fake_llm((LLAMA_8B, usage(1000, 500)))
    with pytest.raises(RuntimeError), get_wb_inference_callback() as cb:
        raise RuntimeError
    llm.invoke("after")
    assert cb.successful_requests == 0


def test_blocks_do_not_grow_langchains_hook_list() -> None:
    with get_wb_inference_callback():
        pass
    before = len(tracer_context._configure_hooks)
    for _ in range(5):
        with get_wb_inference_callback():
            pass
    assert len(tracer_context._configure_hooks) == before
