"""Test helpers: a local W&B Inference emulator and the faults it can inject.

``Emulator`` serves the W&B Inference API on 127.0.0.1 with synthetic answers, so the
client can be tested (and cassettes recorded) without the real service::

    from langchain_wandb_inference.testing import Emulator, Fault

    with Emulator() as emu:
        emu.script("openai/gpt-oss-120b", Fault.overloaded(), Fault.concurrency())
        ...  # point a client at emu.base_url with api_key="emulator-key"

Run one by hand with ``python -m langchain_wandb_inference.testing``.

In your own tests, ``set_testing()`` (or the pytest plugin's ``wb_testing`` fixture)
makes every call a single attempt with no waits and fresh circuits and gates.
"""

from langchain_wandb_inference.policies._config import set_testing
from langchain_wandb_inference.testing.backend import (
    Backend,
    BackendError,
    ChatRequest,
    Completion,
    ToolCall,
    count_tokens,
    message_text,
)
from langchain_wandb_inference.testing.emulator import Emulator, RecordedRequest
from langchain_wandb_inference.testing.faults import Fault
from langchain_wandb_inference.testing.synthetic import SyntheticBackend

__all__ = [
    "Backend",
    "BackendError",
    "ChatRequest",
    "Completion",
    "Emulator",
    "Fault",
    "RecordedRequest",
    "SyntheticBackend",
    "ToolCall",
    "count_tokens",
    "message_text",
    "set_testing",
]
