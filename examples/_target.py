"""Where the examples send their requests: live W&B Inference, or a local emulator.

Every example calls :func:`connect` so that each one runs unchanged in both places:
with ``WANDB_API_KEY`` set it talks to W&B (team/project from ``WANDB_ENTITY`` /
``WANDB_PROJECT``); without a key it starts the package's emulator on 127.0.0.1, so
the examples (and the tests that run them) need no key, no network and no money.
The banner says which backend answered, because synthetic text read as a model's
answer would mislead.

``WB_EXAMPLES_BACKEND=synthetic`` forces the emulator's synthetic answers even when a
key or a local model is available (the tests use it to get deterministic output).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_wandb_inference import ChatWBInference, WBModel
from langchain_wandb_inference.testing import Backend, Emulator

EMULATOR_PROJECT = "examples/emulator"
"""Placeholder ``team/project`` sent to the emulator (it accepts any)."""


@dataclass(frozen=True)
class Target:
    """A backend to talk to, and the ``ChatWBInference`` settings that reach it."""

    description: str
    live: bool
    language_model: bool
    """False when answers are synthetic text: accuracy and content then mean nothing."""
    project: str | None
    """``team/project`` sent as ``OpenAI-Project`` (``None``: W&B's default project)."""
    settings: dict[str, Any] = field(default_factory=dict)
    emulator: Emulator | None = None
    """The local emulator answering (``None``: live), for examples that show its counters."""

    def chat(self, model: str = WBModel.LLAMA_3_1_8B_INSTRUCT, **kwargs: Any) -> ChatWBInference:
        """Return a chat model for ``model`` on this backend."""
        return ChatWBInference(model=model, **self.settings, **kwargs)


def _local_backend(stack: ExitStack) -> tuple[Backend | None, str]:
    """The emulator's answer generator: a tiny real model if installed, else synthetic."""
    synthetic = (None, "synthetic answers — not a language model")
    if os.environ.get("WB_EXAMPLES_BACKEND") == "synthetic":
        return synthetic
    try:  # optional (bash .ci/install-local-model); absent on most machines
        from langchain_wandb_inference.testing.local_model import LocalModelBackend
    except ImportError:
        return synthetic
    if not LocalModelBackend.available():
        return synthetic
    backend = stack.enter_context(LocalModelBackend())
    return backend, "SmolLM2-135M (a tiny real model; weak tool calling)"


@contextmanager
def connect(**emulator_options: Any) -> Iterator[Target]:
    """Yield the backend for this run, printing which one answers.

    ``emulator_options`` (``latency``, ``concurrency_limit``) shape the emulator, if used.
    """
    with ExitStack() as stack:
        if os.environ.get("WANDB_API_KEY") and os.environ.get("WB_EXAMPLES_BACKEND") != "synthetic":
            project = ChatWBInference().project  # validates WANDB_ENTITY/WANDB_PROJECT early
            where = project or "your default entity's 'inference'"
            target = Target(f"live W&B Inference (project: {where})", True, True, project)
        else:
            backend, what = _local_backend(stack)
            emulator = stack.enter_context(Emulator(backend=backend, **emulator_options))
            settings = {
                "base_url": emulator.base_url,
                "api_key": emulator.api_key,
                "project": EMULATOR_PROJECT,
            }
            description = f"local emulator with {what}"
            target = Target(
                description, False, backend is not None, EMULATOR_PROJECT, settings, emulator
            )
        print(f"Backend: {target.description}", flush=True)
        if not target.live:
            print("  (set WANDB_API_KEY to run this against live W&B Inference)", flush=True)
        yield target
