"""The pytest plugin, as a user meets it: record against a server, replay offline.

A user's test suite is generated and run with ``pytester``; the plugin is loaded the
way users get it (the ``pytest11`` entry point).  Recording goes to the emulator,
started with a recognizable fake key and project, and the cassette is then grepped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_wandb_inference.testing import Emulator
from langchain_wandb_inference.testing.recording import EMULATOR_PROVENANCE, provenance_of

pytest_plugins = ["pytester"]

FAKE_KEY = "wbkey-SECRET-0123456789abcdef"
FAKE_PROJECT = "secret-team/secret-project"

USER_CONFTEST = """
import pytest

@pytest.fixture(scope="module")
def vcr_config(wb_vcr_config):
    return wb_vcr_config
"""

USER_TEST = """
import os
import pytest
from langchain_wandb_inference import ChatWBInference

@pytest.mark.vcr
def test_chain():
    llm = ChatWBInference(
        model="meta-llama/Llama-3.1-8B-Instruct",
        api_key=os.environ.get("FAKE_KEY", "replay-only"),
        base_url=os.environ.get("TARGET_URL", "https://api.inference.wandb.ai/v1"),
        project="{project}",
    )
    assert llm.invoke("Say hello").content
    assert "".join(c.text for c in llm.stream("Say hello again"))
"""


@pytest.fixture
def user_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=USER_TEST.format(project=FAKE_PROJECT))
    return pytester


def test_record_then_replay_offline(
    user_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(api_key=FAKE_KEY) as emu:
        monkeypatch.setenv("FAKE_KEY", FAKE_KEY)
        monkeypatch.setenv("TARGET_URL", emu.base_url)
        recorded = user_suite.runpytest_subprocess("--record-mode=once", "-p", "no:cacheprovider")
        recorded.assert_outcomes(passed=1)
        assert emu.count() == 2

    (cassette,) = Path(user_suite.path).rglob("*.yaml")
    text = cassette.read_text()
    assert FAKE_KEY not in text
    assert "SECRET" not in text
    assert "secret-team" not in text
    for header in ("authorization", "openai-project", "user-agent", "x-stainless", "cookie"):
        assert header not in text.lower()
    assert provenance_of(text) == EMULATOR_PROVENANCE  # no WANDB_API_KEY: not live
    assert "data: [DONE]" in text  # the SSE stream is kept as sent

    monkeypatch.delenv("FAKE_KEY")
    monkeypatch.delenv("TARGET_URL")
    replayed = user_suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--disable-socket", "--allow-unix-socket"
    )
    replayed.assert_outcomes(passed=1)


def test_replay_without_cassette_fails_rather_than_calling_out(user_suite: pytest.Pytester) -> None:
    result = user_suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--disable-socket", "--allow-unix-socket"
    )
    result.assert_outcomes(failed=1)


def test_wb_emulator_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from langchain_wandb_inference import ChatWBInference, RetryPolicy
        from langchain_wandb_inference.errors import WBOverloadedError
        from langchain_wandb_inference.testing import Fault

        def test_fault(wb_emulator):
            wb_emulator.always("meta-llama/Llama-3.1-8B-Instruct", Fault.overloaded())
            llm = ChatWBInference(api_key="emulator-key", base_url=wb_emulator.base_url,
                                  retry=RetryPolicy(max_attempts=1))
            with pytest.raises(WBOverloadedError):
                llm.invoke("hi")
            assert wb_emulator.count(status=503) == 1
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
