"""Every test starts from a clean environment and fresh process-wide policy state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langchain_wandb_inference.policies._state import reset_state

# Settings a developer's shell may hold; none may leak into a test.
_ENV = (
    "WANDB_API_KEY",
    "WANDB_PROJECT",
    "WANDB_ENTITY",
    "WANDB_INFERENCE_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_PROJECT_ID",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    reset_state()
    yield
    reset_state()
