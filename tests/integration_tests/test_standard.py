"""langchain-tests' whole ChatModelIntegrationTests suite, replayed from cassettes.

Standard tests turned off here, and why:

* ``test_image_inputs``: it downloads its image from GitHub while running, which no
  machine here can reach; images are covered by ``test_wandb.py::test_image_input``
  with a PNG made on the spot (``supports_image_inputs`` stays false for the suite).
* PDF, audio, video and Anthropic-format inputs: W&B accepts OpenAI ``image_url``
  parts only (contract section 3), so those capabilities are declared absent.
* ``supported_usage_metadata_details``: ``cache_read_input`` is declared (W&B reports
  ``prompt_tokens_details.cached_tokens``); reasoning-token counts are not, since W&B
  documents no ``reasoning_tokens`` field.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wandb_inference import ChatWBInference
from tests.integration_tests.conftest import Target

MODEL = "Qwen/Qwen3.8-27B"


class TestChatWBInferenceIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatWBInference]:
        return ChatWBInference

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "api_key": Target.api_key,
            "base_url": Target.base_url,
            "project": Target.project,
        }

    @property
    def enable_vcr_tests(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "meta-llama/Llama-3.1-8B-Instruct"

    @property
    def supported_usage_metadata_details(
        self,
    ) -> dict[
        Literal["invoke", "stream"],
        list[
            Literal[
                "audio_input",
                "audio_output",
                "reasoning_output",
                "cache_read_input",
                "cache_creation_input",
            ]
        ],
    ]:
        return {"invoke": ["cache_read_input"], "stream": ["cache_read_input"]}

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        """Send one long prompt twice: the second time its prefix is served from cache."""
        llm = self.chat_model_class(**{**self.standard_chat_model_params, **self.chat_model_params})
        prompt = "Summarize this policy in one line. " + " ".join(
            f"Clause {n}: requests are billed per model per million tokens." for n in range(60)
        )
        llm.invoke(prompt)
        if stream:
            total: Any = None
            for chunk in llm.stream(prompt):
                total = chunk if total is None else total + chunk
            assert isinstance(total, AIMessage)
            return total
        return llm.invoke(prompt)
