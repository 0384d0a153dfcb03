"""The ``wb-inference`` command line against the emulator, in-process and as a subprocess.

Error tests start their own ``Emulator(api_key="right-key")`` and point ``--base-url`` at
it (``--emulator`` would build a fresh, fault-free one).  Transient faults are retried by
the client with backoff, so the exit-7 test takes a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from langchain_wandb_inference.cli import EMULATOR_BANNER, ExitCode, main
from langchain_wandb_inference.models import Lifecycle, ReasoningMode, all_models
from langchain_wandb_inference.testing import Emulator, Fault

pytestmark = pytest.mark.emulator

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
UNKNOWN = "acme/brand-new-model"
KEY = "right-key"
# Recognisable and free of common words, so any 6-character piece of it in the output
# can only come from the key.
FAKE_KEY = "Zq8Xv3Lp9Tn2Rk7Wj4Hs"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator with its own key, which the environment holds (as users should)."""
    with Emulator(api_key=KEY) as emulator:
        monkeypatch.setenv("WANDB_API_KEY", KEY)
        yield emulator


def at(emu: Emulator, *argv: str) -> list[str]:
    return ["--base-url", emu.base_url, "--timeout", "5", *argv]


def _model(**traits: object) -> str:
    """A served catalog model with these traits (so tests follow catalog updates)."""
    for info in all_models():
        if info.lifecycle is not Lifecycle.RETIRED and all(
            getattr(info, k) == v for k, v in traits.items()
        ):
            return info.id
    pytest.skip(f"no catalog model with {traits}")


def _retired() -> str:
    return next(i.id for i in all_models() if i.lifecycle is Lifecycle.RETIRED)


# --- models ----------------------------------------------------------------------------


def test_models_with_emulator(cli: Cli) -> None:
    run = cli("--emulator", "models")
    assert run.code == ExitCode.OK, run.err
    assert EMULATOR_BANNER in run.err
    header, *rows = run.out.splitlines()
    assert header.split()[:4] == ["MODEL", "CONTEXT", "VISION", "REASONING"]
    llama = next(r for r in rows if r.startswith(LLAMA + " "))
    assert "131,072" in llama and "0.22/0.22/-" in llama and "general-availability" in llama
    assert "not in catalog" not in run.out and "catalog only" not in run.out


def test_models_json_parses(cli: Cli) -> None:
    run = cli("--emulator", "models", "--json")
    assert run.code == ExitCode.OK, run.err
    models = json.loads(run.out)
    by_id = {m["id"]: m for m in models}
    assert by_id[LLAMA] == {
        "id": LLAMA,
        "status": "listed",
        "context_window": 131072,
        "vision": False,
        "reasoning": "none",
        "price": {"input": 0.22, "output": 0.22, "cached_input": None},
        "lifecycle": "general-availability",
        "replacement": None,
    }
    assert {m["status"] for m in models} == {"listed"}
    assert _retired() not in by_id


def test_models_flags_unknown_and_unserved(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = _model(lifecycle=Lifecycle.GENERALLY_AVAILABLE, reasoning=ReasoningMode.ALWAYS)
    with Emulator(api_key=KEY, models=[LLAMA, UNKNOWN]) as emu:
        monkeypatch.setenv("WANDB_API_KEY", KEY)
        table = cli(*at(emu, "models"))
        data = cli(*at(emu, "models", "--json"))
    assert table.code == data.code == ExitCode.OK
    lines = {line.split()[0]: line for line in table.out.splitlines()}
    assert lines[UNKNOWN].endswith("not in catalog")
    assert lines[gone].endswith("catalog only: not served now")
    assert "catalog only" not in lines[LLAMA] and "not in catalog" not in lines[LLAMA]
    assert _retired() not in lines
    status = {m["id"]: m["status"] for m in json.loads(data.out)}
    assert status[LLAMA] == "listed"
    assert status[UNKNOWN] == "not_in_catalog"
    assert status[gone] == "not_listed"
    assert _retired() not in status
    unknown = next(m for m in json.loads(data.out) if m["id"] == UNKNOWN)
    assert unknown["price"] is None and unknown["context_window"] is None


# --- chat ------------------------------------------------------------------------------


def test_chat_with_emulator(cli: Cli) -> None:
    run = cli("--emulator", "chat", "hello there", "--model", LLAMA)
    assert run.code == ExitCode.OK, run.err
    assert run.out.startswith("[emulator]") and '"hello there"' in run.out
    assert "[reasoning]" not in run.err
    usage = run.err.strip().splitlines()[-1]
    assert usage.startswith("tokens in/out/cached: ")
    assert "estimated cost $" in usage and LLAMA in usage


@pytest.mark.parametrize("stream", [False, True])
def test_chat_shows_reasoning_before_answer(cli: Cli, stream: bool) -> None:
    model = _model(reasoning=ReasoningMode.ALWAYS)
    run = cli("--emulator", "chat", "why?", "--model", model, *(["--stream"] if stream else []))
    assert run.code == ExitCode.OK, run.err
    err = run.err
    assert err.index("[reasoning]") < err.index("Synthetic reasoning") < err.index("[answer]")
    assert err.index("[answer]") < err.index("tokens in/out/cached:")
    assert run.out.count("Synthetic answer") == 1 and "Synthetic reasoning" not in run.out


def test_chat_options_reach_the_request(cli: Cli, emu: Emulator) -> None:
    model = _model(reasoning=ReasoningMode.DEFAULT_ON)
    run = cli(
        *at(emu, "chat", "hi", "--model", model, "--system", "Be terse.", "--max-tokens", "3"),
        *("--no-enable-thinking", "--project", "team/proj"),
    )
    assert run.code == ExitCode.OK, run.err
    request = emu.requests[-1]
    assert request.headers["openai-project"] == "team/proj"
    assert request.body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert request.body["max_tokens"] == 3
    assert request.body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "[reasoning]" not in run.err
    assert "stopped at the output token limit" in run.err


def test_chat_price_unknown(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(api_key=KEY, models=[UNKNOWN]) as emu:
        monkeypatch.setenv("WANDB_API_KEY", KEY)
        run = cli(*at(emu, "chat", "hi", "--model", UNKNOWN, "--stream"))
    assert run.code == ExitCode.OK, run.err
    assert "price unknown" in run.err.splitlines()[-1]
    assert "[emulator]" in run.out


# --- check -----------------------------------------------------------------------------


def test_check_with_emulator(cli: Cli) -> None:
    run = cli("--emulator", "check")
    assert run.code == ExitCode.OK, run.err
    lines = run.out.splitlines()
    assert [line[:4] for line in lines[:4]] == ["\u2713 1.", "\u2713 2.", "\u2713 3.", "\u2713 4."]
    assert lines[-1] == "All checks passed."


def test_check_suggests_the_right_case(cli: Cli, emu: Emulator) -> None:
    run = cli(*at(emu, "check", "--model", LLAMA.lower()))
    assert run.code == ExitCode.REQUEST
    assert run.out.splitlines()[-1].startswith("\u2717 3.")
    assert f"did you mean {LLAMA!r}" in run.err
    assert emu.count(model=LLAMA.lower()) == 0  # stopped before the chat call


def test_check_names_the_replacement_of_a_retired_model(cli: Cli, emu: Emulator) -> None:
    retired = next(
        i for i in all_models() if i.lifecycle is Lifecycle.RETIRED and i.replacement is not None
    )
    run = cli(*at(emu, "check", "--model", retired.id))
    assert run.code == ExitCode.REQUEST
    assert "retired" in run.err and f"replacement: {retired.replacement}" in run.err


def test_check_reports_a_failed_call(cli: Cli, emu: Emulator) -> None:
    emu.always(LLAMA, Fault.quota())
    run = cli(*at(emu, "check"))
    assert run.code == ExitCode.QUOTA
    assert run.out.splitlines()[-1].startswith("\u2717 4.")
    assert "Buy credits or raise the monthly spend limit" in run.err


# --- exit codes ------------------------------------------------------------------------


def test_no_key(cli: Cli) -> None:
    for command in (["models"], ["chat", "hi"], ["check"]):
        run = cli(*command)
        assert run.code == ExitCode.CONFIG, command
        assert "https://wandb.ai/authorize" in run.err
        assert "export WANDB_API_KEY=" in run.err and "--emulator" in run.err
    assert run.out.startswith("\u2717 1.")  # check shows it as its first step


def test_malformed_project(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    run = cli("--emulator", "chat", "hi", "--project", "no-slash")
    assert run.code == ExitCode.CONFIG
    assert "team/project" in run.err and "Traceback" not in run.err
    monkeypatch.setenv("WANDB_PROJECT", "proj")  # no WANDB_ENTITY: names no team
    assert cli("--emulator", "check").code == ExitCode.CONFIG


def test_bad_base_url(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    run = cli("--base-url", "api.inference.wandb.ai/v1", "models")
    assert run.code == ExitCode.CONFIG
    assert "--base-url must be an http(s) URL" in run.err


def test_bad_key(cli: Cli, emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "wrong-key")
    run = cli(*at(emu, "models"))
    assert run.code == ExitCode.AUTH
    assert run.err.startswith("error: W&B Inference rejected the credentials")
    assert "Traceback" not in run.err
    assert emu.count(status=401) == 1  # not retried


def test_quota(cli: Cli, emu: Emulator) -> None:
    emu.always(LLAMA, Fault.quota())
    run = cli(*at(emu, "chat", "hi", "--model", LLAMA))
    assert run.code == ExitCode.QUOTA
    assert "error: W&B Inference credits are used up" in run.err
    assert emu.count(model=LLAMA) == 1  # not retried


def test_unknown_model(cli: Cli, emu: Emulator) -> None:
    run = cli(*at(emu, "chat", "hi", "--model", UNKNOWN))
    assert run.code == ExitCode.REQUEST
    assert "The model was not found" in run.err
    assert f"model {UNKNOWN!r}" in run.err


def test_overloaded_after_retries(cli: Cli, emu: Emulator) -> None:
    emu.always(LLAMA, Fault.overloaded())
    run = cli(*at(emu, "chat", "hi", "--model", LLAMA, "--stream"))
    assert run.code == ExitCode.TRANSIENT
    assert "error: W&B Inference is overloaded" in run.err
    assert emu.count(model=LLAMA, status=503) == 3  # the default retry policy's attempts
    assert run.out == ""


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["chat"],
        ["chat", "hi", "--max-tokens", "0"],
        ["--timeout", "-1", "models"],
        ["--emulator", "--base-url", "http://127.0.0.1:9/v1", "models"],
        ["models", "--bogus"],
    ],
)
def test_usage_errors(cli: Cli, argv: list[str]) -> None:
    run = cli(*argv)
    assert run.code == ExitCode.USAGE
    assert "usage: wb-inference" in run.err


def test_help_documents_exit_codes(cli: Cli) -> None:
    run = cli("--help")
    assert run.code == ExitCode.OK
    for code in ExitCode:
        assert f"\n  {code.value}  " in run.out, code


def test_global_options_may_follow_the_command(cli: Cli) -> None:
    run = cli("models", "--emulator", "--json")
    assert run.code == ExitCode.OK, run.err
    assert EMULATOR_BANNER in run.err


# --- the key is never printed ----------------------------------------------------------


def _pieces(secret: str, size: int = 6) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


COMMANDS = [["models"], ["models", "--json"], ["chat", "hi", "--stream"], ["check"]]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("accepted", [True, False])
def test_key_never_printed(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    accepted: bool,
) -> None:
    with Emulator(api_key=FAKE_KEY if accepted else KEY) as emu:
        monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
        from_env = cli(*at(emu, *command))
        from_flag = cli(*at(emu, "--api-key", FAKE_KEY, *command))
        bad_project = cli(*at(emu, *command, "--project", "bad project"))
    assert from_env.code == (ExitCode.OK if accepted else ExitCode.AUTH)
    assert from_flag.code == from_env.code
    assert bad_project.code == ExitCode.CONFIG
    for run in (from_env, from_flag, bad_project):
        leaked = [p for p in _pieces(FAKE_KEY) if p in run.text]
        assert not leaked, run.text


def test_key_scrub_can_fail(cli: Cli) -> None:
    """The leak check above sees a key when one is printed."""
    assert _pieces(FAKE_KEY) & {FAKE_KEY[3:9]}
    run = cli("chat", FAKE_KEY, "--emulator")  # the prompt is echoed by the emulator
    assert any(p in run.text for p in _pieces(FAKE_KEY))


# --- the entry point -------------------------------------------------------------------


def test_python_dash_m_entry_point() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, "-m", "langchain_wandb_inference", "--emulator", "models"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert EMULATOR_BANNER in result.stderr
    assert any(line.startswith(LLAMA + " ") for line in result.stdout.splitlines())
