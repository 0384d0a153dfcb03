"""Reasoning sent back reaches a real engine's prompt (llama.cpp's ``/apply-template``).

Optional, like the local model tests: skipped unless the pinned llama.cpp build and the
SmolLM2 weights are installed (CI installs them).  The chat template below renders an
assistant turn's earlier reasoning the way reasoning models' templates do (Qwen3, GLM,
DeepSeek: ``message.reasoning_content``); llama.cpp rebuilds each message from its own
struct, so only the fields it knows reach the template.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langchain_wandb_inference import ChatWBInference
from langchain_wandb_inference.testing.local_model import INSTALL_COMMAND, LocalModelBackend

TEMPLATE = """\
{%- for message in messages -%}
<|im_start|>{{ message.role }}
{%- if message.role == "assistant" and message.reasoning_content %}
<think>{{ message.reasoning_content }}</think>
{%- endif %}
{{ message.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif -%}
"""


@pytest.fixture(scope="module")
def llamacpp() -> Iterator[str]:
    if not LocalModelBackend.available():
        pytest.skip(f"local model not installed: {INSTALL_COMMAND}")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # before OpenMP loads
    import xllamacpp

    from langchain_wandb_inference.testing.local_model import _bundled_gguf

    params: Any = xllamacpp.CommonParams()
    params.model.path = str(_bundled_gguf())
    params.n_ctx = 512
    params.n_parallel = 1
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.use_jinja = True
    params.chat_template = TEMPLATE
    params.verbosity = 1
    server = xllamacpp.Server(params)
    yield str(server.listening_address)
    del server


def test_reasoning_sent_back_reaches_the_prompt(llamacpp: str) -> None:
    llm = ChatWBInference(api_key="unused", send_reasoning_back=True)
    history = [
        HumanMessage("What is the weather in Tokyo?"),
        AIMessage(
            "",
            additional_kwargs={"reasoning_content": "I should call the weather tool first."},
            tool_calls=[{"name": "weather", "args": {"city": "Tokyo"}, "id": "call_1"}],
        ),
        ToolMessage("sunny", tool_call_id="call_1"),
    ]
    messages = llm._get_request_payload(history)["messages"]
    rendered = httpx.post(f"{llamacpp}/apply-template", json={"messages": messages}, timeout=30)
    rendered.raise_for_status()
    assert "<think>I should call the weather tool first.</think>" in rendered.json()["prompt"]
