"""The pytest plugin, as a user meets it: record against a server, replay offline.

A user's test suite is generated and run with ``pytester``; the plugin is loaded the
way users get it (the ``pytest11`` entry point).  Recording goes to the emulator,
started with a recognizable fake key and project, and the cassette is then grepped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from langchain_wandb_inference._redact import KEY_PATTERNS
from langchain_wandb_inference.testing import Emulator
from langchain_wandb_inference.testing.pytest_plugin import TEST_EXTRA
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


def test_rewrite_mode_records_the_cassette_again(
    user_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-recording deletes ``<test>.<serializer>`` for "rewrite": it must be our file."""
    with Emulator(api_key=FAKE_KEY) as emu:
        monkeypatch.setenv("FAKE_KEY", FAKE_KEY)
        monkeypatch.setenv("TARGET_URL", emu.base_url)
        user_suite.runpytest_subprocess("--record-mode=once", "-p", "no:cacheprovider")
        (cassette,) = Path(user_suite.path).rglob("*.yaml")
        first = cassette.read_text()
        again = user_suite.runpytest_subprocess("--record-mode=rewrite", "-p", "no:cacheprovider")
        again.assert_outcomes(passed=1)
        assert emu.count() == 4  # both runs reached the server: nothing was replayed
    assert list(Path(user_suite.path).rglob("*.yaml")) == [cassette]
    assert cassette.read_text() != first  # new completion ids: written anew


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


# --- secrets given as arguments, echoed back by the server ---------------------------------

ECHO_KEY = "wbkey-SECRET-0123456789abcdef"
ECHO_PROJECT = "secret-team/secret-project"

ECHO_TEST = f"""
import os
import pytest
from langchain_wandb_inference import ChatWBInference, RetryPolicy

@pytest.mark.vcr
def test_chain():
    llm = ChatWBInference(
        model="meta-llama/Llama-3.1-8B-Instruct",
        api_key="{ECHO_KEY}",
        project="{ECHO_PROJECT}",
        base_url=os.environ.get("TARGET_URL", "https://api.inference.wandb.ai/v1"),
        retry=RetryPolicy(max_attempts=1),
    )
    answer = llm.invoke("Hello from my team, secret-team, working in {ECHO_PROJECT}")
    assert "secret-team" in answer.content
"""


class _Echo(BaseHTTPRequestHandler):
    """Answers a chat completion that repeats the caller's key and project everywhere."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers["Authorization"].removeprefix("Bearer ")
        project = self.headers["OpenAI-Project"]
        content = f"my team, secret-team: you are {project}, key {key}"
        body = json.dumps(
            {
                "id": "chatcmpl-echo",
                "object": "chat.completion",
                "created": 0,
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Key", key)
        self.send_header("X-Echo-Project", project)
        self.send_header("WWW-Authenticate", f'Bearer realm="{project}", error_description="{key}"')
        self.send_header("Set-Cookie", f"session={key}; project={project}; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_secrets_given_as_arguments_never_reach_the_cassette(
    pytester: pytest.Pytester, echo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=ECHO_TEST)
    monkeypatch.setenv("TARGET_URL", echo_server)
    recorded = pytester.runpytest_subprocess("--record-mode=once", "-p", "no:cacheprovider")
    recorded.assert_outcomes(passed=1)

    (cassette,) = Path(pytester.path).rglob("*.yaml")
    text = cassette.read_text()
    assert ECHO_KEY not in text
    assert "SECRET" not in text
    assert ECHO_PROJECT not in text
    assert "secret-project" not in text
    assert not [m.group(0) for p in KEY_PATTERNS for m in p.finditer(text)]
    assert "my team, secret-team" in text  # the project goes whole; its parts stay
    assert "x-echo-key" in text.lower() and "www-authenticate" in text.lower()
    assert "set-cookie" not in text.lower()
    assert provenance_of(text) == EMULATOR_PROVENANCE  # 127.0.0.1: not the live service

    monkeypatch.delenv("TARGET_URL")
    replayed = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--disable-socket", "--allow-unix-socket"
    )
    replayed.assert_outcomes(passed=1)


# --- the plugin in environments without the test extra --------------------------------------


def test_plugin_is_harmless_without_pytest_recording(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_unrelated():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:recording", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_recording_fixture_without_pytest_recording_names_the_extra(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_needs_vcr(wb_vcr_config):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:recording", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert f"wb_vcr_config needs pytest-recording and vcrpy (the test extra): {TEST_EXTRA}" in (
        result.stdout.str()
    )


def test_wb_testing_fixture_switches_test_mode_on_and_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from langchain_wandb_inference.policies import _config

        def test_on(wb_testing):
            assert _config.testing_attempts == 1

        def test_off_again():
            assert _config.testing_attempts is None
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(
        passed=2
    )
