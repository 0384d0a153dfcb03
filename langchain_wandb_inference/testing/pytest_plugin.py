"""pytest plugin (auto-registered on install): recorded-response tests for W&B Inference.

Fixtures:

* ``wb_vcr_config`` — VCR settings that scrub ``Authorization``, ``OpenAI-Project``,
  cookies, fingerprints and any key-like value on record, keep SSE streams as recorded,
  and match on method, path and body.  Hand it to pytest-recording::

      @pytest.fixture(scope="module")
      def vcr_config(wb_vcr_config):
          return wb_vcr_config

* ``wb_emulator`` — the local emulator on 127.0.0.1 (fresh per test), with fault
  scripting: ``wb_emulator.script(model, Fault.overloaded(), ...)``.

Record once against the live service, replay offline forever::

    WANDB_API_KEY=... pytest --record-mode=once   # writes cassettes
    pytest                                         # replays, no network, no key

Every cassette's first line records whether it came from the live service or the
emulator (``WANDB_API_KEY`` set or not while recording).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_wandb_inference.errors import DEFAULT_BASE_URL
from langchain_wandb_inference.testing.emulator import Emulator
from langchain_wandb_inference.testing.recording import (
    EMULATOR_PROVENANCE,
    LIVE_PROVENANCE,
    register,
    vcr_config,
)


def _live_secrets() -> list[str]:
    """Values to redact wherever they appear: your key and your team/project."""
    names = ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY")
    return [value for value in (os.environ.get(n) for n in names) if value]


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Register the scrubbing serializer and matcher, stamped with where answers come from."""
    recording = config.getoption("--record-mode", default="none") not in (None, "none")
    live = recording and bool(os.environ.get("WANDB_API_KEY"))
    base_url = os.environ.get("WANDB_INFERENCE_BASE_URL", DEFAULT_BASE_URL)
    register(vcr, LIVE_PROVENANCE.format(base_url=base_url) if live else EMULATOR_PROVENANCE)


@pytest.fixture(scope="session")
def wb_vcr_config() -> dict[str, Any]:
    """VCR settings safe to commit (see the module docstring)."""
    return vcr_config(extra_secrets=_live_secrets())


@pytest.fixture
def wb_emulator() -> Iterator[Emulator]:
    """A W&B Inference emulator on 127.0.0.1 for this test (key ``emulator-key``)."""
    with Emulator() as emulator:
        yield emulator
