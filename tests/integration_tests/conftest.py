"""Integration tests replay recorded W&B Inference answers from ``cassettes/``.

Default: replay only, sockets blocked — a missing or mismatched cassette fails the test.

Scrubbing, the provenance line and request matching come from the package's own
pytest plugin (``langchain_wandb_inference.testing.pytest_plugin``), as users get them.

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

from langchain_wandb_inference.chat_models import DEFAULT_BASE_URL
from langchain_wandb_inference.testing import Emulator

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this folder replays from a cassette (not only ``test_stream_time``)."""
    for item in items:
        if HERE not in Path(str(item.fspath)).parents:
            continue
        if not item.get_closest_marker("vcr"):
            item.add_marker(pytest.mark.vcr)
        if item.name.startswith("test_stream_time"):  # benchmarks one request many times
            item.add_marker(pytest.mark.vcr(allow_playback_repeats=True))


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
def vcr_config(wb_vcr_config: dict[str, Any]) -> dict[str, Any]:
    """The package's own pytest plugin provides the scrubbing configuration."""
    return wb_vcr_config


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(CASSETTES / request.module.__name__.rsplit(".", 1)[-1])
