"""Integration tests replay recorded W&B Inference answers from ``cassettes/``.

Default: replay only, sockets blocked — a missing or mismatched cassette fails the test.

Re-recording (one command)::

    pytest tests/integration_tests --record-mode=rewrite

With ``WANDB_API_KEY`` set this records against the live service (``project`` from
``WANDB_ENTITY``/``WANDB_PROJECT`` if set); without it, against this package's emulator
on 127.0.0.1.  Each cassette's first line says which.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_socket import disable_socket, enable_socket
from vcr import VCR

from langchain_wandb_inference.chat_models import DEFAULT_BASE_URL
from langchain_wandb_inference.testing import Emulator
from langchain_wandb_inference.testing.recording import (
    EMULATOR_PROVENANCE,
    LIVE_PROVENANCE,
    register,
    vcr_config as wb_vcr_config,
)

HERE = Path(__file__).parent
CASSETTES = HERE.parent.parent / "cassettes"
EMULATOR_KEY = "emulator-key"
RECORDING_PROJECT = "recording-team/recording-project"

# Read once, before the per-test fixture clears the environment.
_LIVE_KEY = os.environ.get("WANDB_API_KEY")
_LIVE_URL = os.environ.get("WANDB_INFERENCE_BASE_URL", DEFAULT_BASE_URL)
_LIVE_PROJECT = (
    f"{os.environ['WANDB_ENTITY']}/{os.environ['WANDB_PROJECT']}"
    if os.environ.get("WANDB_ENTITY") and os.environ.get("WANDB_PROJECT")
    else os.environ.get("WANDB_PROJECT") or None
)


class Target:
    """Where the model under test sends its requests in this session."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str = "replay-key-not-a-secret"
    project: str | None = RECORDING_PROJECT
    recording: bool = False
    live: bool = False


def _recording(config: pytest.Config) -> bool:
    return config.getoption("--record-mode", default="none") not in (None, "none")


def pytest_recording_configure(config: pytest.Config, vcr: VCR) -> None:
    provenance = (
        LIVE_PROVENANCE.format(base_url=_LIVE_URL)
        if _recording(config) and _LIVE_KEY
        else EMULATOR_PROVENANCE
    )
    register(vcr, provenance)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this folder replays from a cassette (not only ``test_stream_time``)."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents and not item.get_closest_marker("vcr"):
            item.add_marker(pytest.mark.vcr)


@pytest.fixture(scope="session")
def wb_target(request: pytest.FixtureRequest) -> Iterator[type[Target]]:
    """Replay: nothing to start.  Record: the live service with a key, else the emulator."""
    if not _recording(request.config):
        yield Target
        return
    Target.recording = True
    if _LIVE_KEY:
        Target.base_url, Target.api_key, Target.project, Target.live = (
            _LIVE_URL,
            _LIVE_KEY,
            _LIVE_PROJECT,
            True,
        )
        yield Target
        return
    with Emulator(api_key=EMULATOR_KEY) as emulator:
        Target.base_url, Target.api_key = emulator.base_url, EMULATOR_KEY
        yield Target


@pytest.fixture(autouse=True)
def _network_policy(wb_target: type[Target]) -> Iterator[None]:
    """Replaying needs no network at all; recording may reach the target."""
    if wb_target.recording:
        yield
        return
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return wb_vcr_config(extra_secrets=[s for s in (_LIVE_KEY, _LIVE_PROJECT) if s])


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(CASSETTES / request.module.__name__.rsplit(".", 1)[-1])
