"""What W&B adds to ChatOpenAI, replayed from cassettes (see conftest for re-recording).

The outgoing request is observed with an httpx event hook, which fires before VCR's
transport answers, so header and body checks hold in replay as they did on record.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage

from langchain_wandb_inference import ChatWBInference, WBModel
from langchain_wandb_inference.models import ReasoningMode
from tests.integration_tests.conftest import Target

REASONING_MODEL = WBModel.GPT_OSS_120B  # reasoning always on
TOGGLE_MODEL = WBModel.GRANITE_4_2_8B  # reasoning on by default, can be turned off
CACHED_MODEL = WBModel.DEEPSEEK_V4_FLASH_0731  # has a cached-input price
VISION_MODEL = WBModel.QWEN3_8_27B
LORA = "wandb-artifact:///recording-team/recording-project/support-adapter:v1"


class Seen:
    """Requests the client sent (recorded by an event hook)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def hook(self, request: httpx.Request) -> None:
        self.requests.append(request)

    async def ahook(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.requests[index].content)
        return parsed


def make(model: str, seen: Seen | None = None, **kwargs: Any) -> ChatWBInference:
    params: dict[str, Any] = {
        "model": model,
        "api_key": Target.api_key,
        "base_url": Target.base_url,
        "project": Target.project,
        "temperature": 0,
        **kwargs,
    }
    if seen is not None:
        params["http_client"] = httpx.Client(event_hooks={"request": [seen.hook]})
        params["http_async_client"] = httpx.AsyncClient(event_hooks={"request": [seen.ahook]})
    return ChatWBInference(**params)


def test_project_header_on_every_request() -> None:
    seen = Seen()
    llm = make(WBModel.LLAMA_3_1_8B_INSTRUCT, seen)
    llm.invoke("Say hi.")
    list(llm.stream("Say hi."))
    assert len(seen.requests) == 2
    for request in seen.requests:
        assert request.headers["openai-project"] == Target.project
        assert request.url.path == "/v1/chat/completions"


async def test_project_header_async() -> None:
    seen = Seen()
    llm = make(WBModel.LLAMA_3_1_8B_INSTRUCT, seen)
    await llm.ainvoke("Say hi.")
    async for _ in llm.astream("Say hi."):
        pass
    assert [r.headers["openai-project"] for r in seen.requests] == [Target.project] * 2


def test_reasoning_in_invoke() -> None:
    message = make(REASONING_MODEL).invoke("Is 17 prime? Answer yes or no.")
    blocks = message.content_blocks
    assert blocks[0]["type"] == "reasoning"
    assert blocks[0]["reasoning"]
    assert any(block["type"] == "text" for block in blocks[1:])
    assert message.response_metadata["model_provider"] == "wandb"


def test_reasoning_in_stream() -> None:
    chunks = list(make(REASONING_MODEL).stream("Is 17 prime? Answer yes or no."))
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.content_blocks[0]["type"] == "reasoning"
    assert full.additional_kwargs["reasoning_content"]
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] > 0


@pytest.mark.parametrize("enable", [True, False])
def test_enable_thinking(enable: bool) -> None:
    assert TOGGLE_MODEL.info.reasoning is ReasoningMode.DEFAULT_ON
    seen = Seen()
    message = make(TOGGLE_MODEL, seen, enable_thinking=enable).invoke("What is 2+2?")
    assert seen.body()["chat_template_kwargs"] == {"enable_thinking": enable}
    has_reasoning = message.content_blocks[0]["type"] == "reasoning"
    assert has_reasoning is enable


def test_cache_salt_isolates_prefix_cache() -> None:
    prompt = "Repeat after me: " + "the quick brown fox jumps over the lazy dog. " * 40
    seen = Seen()
    shared = make(CACHED_MODEL, seen)
    shared.invoke(prompt)
    warm = shared.invoke(prompt)
    salted = make(CACHED_MODEL, seen, cache_salt="tenant-42").invoke(prompt)
    assert seen.body()["cache_salt"] == "tenant-42"
    assert warm.usage_metadata is not None
    assert salted.usage_metadata is not None
    assert warm.usage_metadata["input_token_details"].get("cache_read", 0) > 0
    assert salted.usage_metadata["input_token_details"].get("cache_read", 0) == 0


def test_list_models_joins_catalog() -> None:
    listed = make(WBModel.LLAMA_3_1_8B_INSTRUCT).list_models()
    by_id = {m.id: m for m in listed}
    assert WBModel.GPT_OSS_120B.value in by_id
    info = by_id[WBModel.GPT_OSS_120B.value].info
    assert info is not None
    assert info.context_window == 131_072


async def test_alist_models() -> None:
    listed = await make(WBModel.LLAMA_3_1_8B_INSTRUCT).alist_models()
    assert any(m.id == WBModel.LLAMA_3_1_8B_INSTRUCT.value for m in listed)


def test_lora_artifact_model_id() -> None:
    seen = Seen()
    message = make(LORA, seen).invoke("Hello adapter")
    assert seen.body()["model"] == LORA
    assert message.response_metadata["model_name"] == LORA
    assert isinstance(message.content, str)
    assert message.content


def _png(width: int = 8, height: int = 8) -> bytes:
    """A small red PNG, made here so the test needs no download."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_image_input() -> None:
    image = base64.b64encode(_png()).decode()
    message = HumanMessage(
        content=[
            {"type": "text", "text": "What colour is this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
        ]
    )
    seen = Seen()
    answer = make(VISION_MODEL, seen).invoke([message])
    assert seen.body()["messages"][0]["content"][1]["type"] == "image_url"
    assert answer.content


def test_tool_call_with_reasoning_model() -> None:
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"Sunny in {city}"

    message = make(REASONING_MODEL).bind_tools([get_weather]).invoke("What's the weather in Tokyo?")
    assert message.tool_calls
    assert message.tool_calls[0]["name"] == "get_weather"
    assert isinstance(message.tool_calls[0]["args"]["city"], str)
