"""Process-wide state that cannot hurt a drop-in user: no deadlock, no lockout, no leak.

Against the emulator on 127.0.0.1, with the package's default settings unless a test
says otherwise.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import traceback
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_wandb_inference import Budget, ChatWBInference, RetryPolicy
from langchain_wandb_inference.errors import WBAuthenticationError
from langchain_wandb_inference.testing import Emulator, Fault

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(latency=0.05) as emu:
        yield emu


def make(emu: Emulator, **kwargs: Any) -> ChatWBInference:
    return ChatWBInference(
        **{"model": MODEL, "api_key": emu.api_key, "base_url": emu.base_url, **kwargs}
    )


def finishes(target: Any, *args: Any, seconds: float = 60) -> Any:
    """Run ``target`` in a thread; fail (rather than hang) if it does not finish."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{target.__name__} did not finish: a deadlock"
    return out[0]


# -- the limiter never deadlocks -----------------------------------------------------


def test_zipped_streams_complete(emulator: Emulator) -> None:
    """Three streams read in lockstep by one thread (was: hung after 2 requests)."""
    llm = make(emulator)

    def zipped() -> list[tuple[Any, ...]]:
        return list(zip(llm.stream("a"), llm.stream("b"), llm.stream("c"), strict=False))

    assert finishes(zipped)
    assert emulator.count() == 3


def test_a_callback_calling_the_model_mid_stream_completes(emulator: Emulator) -> None:
    """A tool or callback that calls the model while an outer stream is open."""
    llm = make(emulator, max_concurrency=1)
    inner: list[str] = []

    def outer() -> str:
        text = ""
        for chunk in llm.stream("outer"):
            if not inner:
                inner.append(llm.invoke("inner").text)  # same thread, outer slot held
            text += chunk.text
        return text

    assert finishes(outer)
    assert inner and inner[0]


def test_a_tool_in_another_thread_completes_while_a_stream_waits(emulator: Emulator) -> None:
    """The outer stream is not read while its thread waits on a worker: it stops counting."""
    llm = make(emulator, max_concurrency=1)

    def outer() -> str:
        stream = llm.stream("outer")
        first = next(stream)
        answer: list[str] = []
        worker = threading.Thread(target=lambda: answer.append(llm.invoke("tool").text))
        worker.start()
        worker.join()
        return first.text + "".join(c.text for c in stream) + answer[0]

    assert finishes(outer)


async def test_interleaved_async_streams_complete(emulator: Emulator) -> None:
    llm = make(emulator)
    streams = [llm.astream(p).__aiter__() for p in ("a", "b", "c")]
    firsts = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 60)
    assert len(firsts) == 3
    for stream in streams:
        await asyncio.wait_for(stream.aclose(), 60)


# -- the breaker never locks out a healthy server ---------------------------------------


def test_a_brief_outage_does_not_lock_out_the_restarted_server(emulator: Emulator) -> None:
    """Two calls during an outage (3 attempts each), then the server is back: answered."""
    llm = make(emulator, retry=RetryPolicy(initial_delay=0.01))
    for prompt in ("a", "b"):
        emulator.script(MODEL, Fault.overloaded(), Fault.overloaded(), Fault.overloaded())
        with pytest.raises(Exception, match="overloaded"):
            llm.invoke(prompt)
    assert llm.invoke("c").content  # ChatOpenAI would answer at once: so do we


def test_one_prompts_repeatable_500_does_not_block_other_prompts(emulator: Emulator) -> None:
    """llama.cpp's deterministic "does not match the expected format" 500."""
    backup = "meta-llama/Llama-3.3-70B-Instruct"
    llm = make(emulator, retry=RetryPolicy(max_attempts=1), fallback_models=[backup])
    emulator.always(MODEL, Fault.server_error())
    for _ in range(12):
        llm.invoke("the prompt the model cannot answer")
    emulator.always(MODEL, None)
    assert llm.invoke("another prompt").response_metadata["model_name"] == MODEL


# -- fork ------------------------------------------------------------------------------


def _child_call(base_url: str, key: str, prompt: str, queue: Any) -> None:
    llm = ChatWBInference(model=MODEL, api_key=key, base_url=base_url)
    queue.put((prompt, llm.invoke(prompt).text))


def test_forked_children_get_their_own_answers(emulator: Emulator) -> None:
    """Children of a warmed-up parent never read the parent's pooled connections."""
    llm = make(emulator, max_concurrency=2)
    llm.invoke("warm the parent's pool")
    held = llm.stream("a stream the parent holds open while forking")
    next(held)  # the parent's limiter believes a request is in flight
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [
        context.Process(
            target=_child_call, args=(emulator.base_url, emulator.api_key, f"p{i}", queue)
        )
        for i in range(6)
    ]
    for child in children:
        child.start()
    answers = dict(queue.get(timeout=60) for _ in children)
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert all(f'"p{i}"' in answers[f"p{i}"] for i in range(6))  # each its own answer
    held.close()


# -- no secret in an exception chain, a traceback, or a tracer ------------------------------


class _Errors(BaseCallbackHandler):
    """What a LangChain tracer keeps of a failed run."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.seen.append("".join(traceback.format_exception(error)))
        self.seen.append(repr(vars(error)))


def _chain_text(exc: BaseException) -> str:
    texts, seen, current = [], set(), [exc]
    while current:
        error = current.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        texts.append(repr(error))
        for name in ("request", "response"):
            try:
                message = getattr(error, name, None)
            except RuntimeError:
                message = None
            if message is not None:
                texts.append(repr(list(message.headers.multi_items())))
                if name == "response":
                    texts.append(message.text)
        current += [e for e in (error.__cause__, error.__context__) if e is not None]
    return "\n".join(texts)


@pytest.mark.parametrize("path", ["invoke", "stream"])
def test_no_secret_anywhere_when_the_server_echoes_them(emulator: Emulator, path: str) -> None:
    key, project = "wb-secret-key-0123456789abcdef", "secret-team/secret-project"
    emulator.always(MODEL, Fault.authentication())
    llm = ChatWBInference(model=MODEL, api_key=key, project=project, base_url=emulator.base_url)
    tracer = _Errors()
    with pytest.raises(WBAuthenticationError) as info:
        if path == "invoke":
            llm.invoke("hi", config={"callbacks": [tracer]})
        else:
            list(llm.stream("hi", config={"callbacks": [tracer]}))
    shown = _chain_text(info.value) + "".join(traceback.format_exception(info.value))
    shown += "\n".join(tracer.seen)
    assert tracer.seen
    assert key not in shown
    assert project not in shown


# -- budget and usage under concurrency -------------------------------------------------


def test_a_tiny_budget_holds_under_32_threads(emulator: Emulator) -> None:
    """Budget(0.001) with 32 threads sent all 32 (77x the limit); now what it fits."""
    budget = Budget(0.001)
    llm = make(emulator, budget=budget, max_tokens=1000, retry=None)
    outcomes = llm.batch(["hi"] * 32, config={"max_concurrency": 32}, return_exceptions=True)
    sent = emulator.count()
    fits = int(0.001 / ((1 + 1000) * 0.22 / 1e6))  # prompt floor 1 token + max_tokens
    assert sent <= fits
    assert sum(not isinstance(o, Exception) for o in outcomes) == sent
    assert budget.spent_usd <= 0.001


def test_an_abandoned_stream_is_counted_for_what_arrived(emulator: Emulator) -> None:
    budget = Budget(1.0)
    llm = make(emulator, budget=budget)
    stream = llm.stream("tell me something long")
    next(stream)
    next(stream)
    stream.close()  # abandoned before the usage chunk
    assert budget.reserved_usd == 0
    assert 0 < budget.spent_usd < 0.0001
