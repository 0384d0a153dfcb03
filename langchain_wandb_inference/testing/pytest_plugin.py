"""pytest plugin (auto-registered on install): recorded-response tests for W&B Inference.

Fixtures:

* ``wb_vcr_config`` — VCR settings that read your key and project from the recorded
  requests themselves and scrub them (and any key-like value) from everything
  recorded, keep SSE streams as recorded, match on method, path and body, and stamp
  each cassette with where its answers came from.  Hand it to pytest-recording::

      @pytest.fixture(scope="module")
      def vcr_config(wb_vcr_config):
          return wb_vcr_config

* ``wb_emulator`` — the local emulator on 127.0.0.1 (fresh per test), with fault
  scripting: ``wb_emulator.script(model, Fault.overloaded(), ...)``.
* ``wb_testing`` — test mode for this test (``set_testing``): one attempt per call,
  no waits, fresh circuits and concurrency gates; switched off afterwards.

Record once against the live service, replay offline forever::

    WANDB_API_KEY=... pytest --record-mode=once   # writes cassettes
    pytest                                         # replays, no network, no key

The plugin is loaded by every pytest run in an environment where this package is
installed, so it must be harmless there: ``wb_vcr_config`` needs the ``test`` extra
(pytest-recording, vcrpy) and says so when it is missing; pytest-recording's hook is
declared only when pytest-recording is loaded (pytest refuses an implementation of a
hook nobody declared); vcrpy is imported only when a cassette is written or read.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_wandb_inference.policies._config import set_testing
from langchain_wandb_inference.testing.emulator import Emulator
from langchain_wandb_inference.testing.recording import register, vcr_config

TEST_EXTRA = 'pip install "langchain-wandb-inference[test]"'
"""How to get what the recording fixtures need."""


class _RecordingHooks:
    """pytest-recording's hook, registered only when pytest-recording declared it.

    pytest-recording adds its hook specification from ``pytest_addhooks`` when it is
    registered (at start-up, before ``pytest_configure``).  A module-level
    implementation here would make every pytest run without pytest-recording end in
    ``INTERNALERROR ... unknown hook 'pytest_recording_configure'``.
    """

    def pytest_recording_configure(self, config: pytest.Config, vcr: Any) -> None:
        """Register the scrubbing serializer and the body matcher on pytest-recording's VCR."""
        register(vcr)


def _recording_loaded(config: pytest.Config) -> bool:
    """Whether pytest-recording declared its hook (it is installed and not disabled)."""
    return hasattr(config.hook, "pytest_recording_configure")


def pytest_configure(config: pytest.Config) -> None:
    """Hook into pytest-recording if, and only if, it is there."""
    if _recording_loaded(config):
        config.pluginmanager.register(_RecordingHooks(), "wandb_inference_recording")


@pytest.fixture(scope="session")
def wb_vcr_config(pytestconfig: pytest.Config) -> dict[str, Any]:
    """VCR settings safe to commit (see the module docstring)."""
    if not _recording_loaded(pytestconfig) or importlib.util.find_spec("vcr") is None:
        pytest.fail(
            f"wb_vcr_config needs pytest-recording and vcrpy (the test extra): {TEST_EXTRA}",
            pytrace=False,
        )
    key = os.environ.get("WANDB_API_KEY")  # scrubbed even where the client was given another
    return vcr_config(credentials=[key] if key else [])


@pytest.fixture
def wb_emulator() -> Iterator[Emulator]:
    """A W&B Inference emulator on 127.0.0.1 for this test (key ``emulator-key``)."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def wb_testing() -> Iterator[None]:
    """Test mode for one test: single attempts, no waits, fresh circuits and gates."""
    set_testing(True)
    yield
    set_testing(False)
