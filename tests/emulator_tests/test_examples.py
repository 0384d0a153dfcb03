"""Every example in ``examples/`` runs, and says what it should, so none can rot.

Each example's ``main()`` runs in-process against the emulator (no key: the root
conftest clears ``WANDB_API_KEY``) with ``WB_EXAMPLES_BACKEND=synthetic``, so answers
are deterministic even where the local model is installed.  An audit hook records
every host the process resolves or connects to during a test, and the test fails if
any is not loopback: Weave, in particular, must not phone home on the no-key path.
The keyed ("live") code paths run too, with ``WANDB_INFERENCE_BASE_URL`` pointing
at the emulator, so what only runs with a key is exercised as well.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel

from langchain_wandb_inference.testing import Emulator, SyntheticBackend
from langchain_wandb_inference.testing.redis_server import HINT as REDIS_HINT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "None"}
SYNTHETIC_BANNER = "Backend: local emulator with synthetic answers — not a language model"

_hosts: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _hosts is None:
        return
    if event == "socket.getaddrinfo":
        _hosts.append(str(args[0]))
    elif event == "socket.connect" and isinstance(args[1], tuple):
        _hosts.append(str(args[1][0]))


sys.addaudithook(_audit)  # cannot be removed; records only while a test runs


@pytest.fixture(autouse=True)
def _examples_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    global _hosts
    monkeypatch.setenv("WB_EXAMPLES_BACKEND", "synthetic")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    _hosts = []
    try:
        yield
        outside = sorted({h for h in _hosts if h not in LOOPBACK})
        assert not outside, f"an example reached beyond loopback: {outside}"
    finally:
        _hosts = None


@pytest.fixture
def live_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """A key in the environment (the examples' live path), the URL pointing at the emulator."""
    with Emulator() as emu:
        monkeypatch.delenv("WB_EXAMPLES_BACKEND")
        monkeypatch.setenv("WANDB_API_KEY", emu.api_key)
        monkeypatch.setenv("WANDB_INFERENCE_BASE_URL", emu.base_url)
        monkeypatch.setenv("WANDB_ENTITY", "team")
        monkeypatch.setenv("WANDB_PROJECT", "proj")
        yield emu


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


def run(name: str, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert load(name).main(list(argv)) == 0
    return capsys.readouterr().out


def env_without_key() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "OPENAI_"))}
    return {**env, "WB_EXAMPLES_BACKEND": "synthetic"}


# --- quickstart --------------------------------------------------------------------------


def test_quickstart_chain_tool_step_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("quickstart", capsys)
    assert SYNTHETIC_BANNER in out
    assert (
        'Chain answer: [emulator] Synthetic answer to a 2-message chat. Last user message: "What is W&B Inference?"'
        in out
    )
    assert "Tool call: get_weather({'city': 'Tokyo'})" in out
    assert "Tool result: Tokyo: sunny, 22 °C" in out
    # The model's final answer quotes the tool result: the ToolMessage reached it.
    assert "Final answer: [emulator] The tool get_weather returned: Tokyo: sunny, 22 °C" in out
    usage = re.search(
        r"Usage: 3 requests, (\d+) prompt \+ (\d+) completion tokens; estimated cost \$(\d+\.\d{6})",
        out,
    )
    assert usage, out
    prompt, completion, cost = int(usage[1]), int(usage[2]), float(usage[3])
    assert prompt > 0 and completion > 0
    assert cost == pytest.approx((prompt + completion) * 0.22 / 1e6, abs=1e-6)  # Llama-3.1-8B


def test_quickstart_runs_as_a_script() -> None:
    proc = subprocess.run(
        [sys.executable, "examples/quickstart.py"],
        cwd=ROOT,
        env=env_without_key(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert SYNTHETIC_BANNER in proc.stdout
    assert "Final answer: [emulator] The tool get_weather returned" in proc.stdout


def test_quickstart_with_a_key_goes_to_the_configured_service(
    live_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run("quickstart", capsys)
    assert "Backend: live W&B Inference (project: team/proj)" in out
    assert "Final answer:" in out
    requests = [r for r in live_emulator.requests if r.path.endswith("/chat/completions")]
    assert len(requests) == 3
    assert {r.headers.get("openai-project") for r in requests} == {"team/proj"}


@pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None, reason="local model not installed"
)
def test_quickstart_on_the_local_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_wandb_inference.testing.local_model import LocalModelBackend

    if not LocalModelBackend.available():
        pytest.skip("local model weights not installed")
    monkeypatch.delenv("WB_EXAMPLES_BACKEND")
    out = run("quickstart", capsys)
    assert "Backend: local emulator with SmolLM2-135M (a tiny real model; weak tool calling)" in out
    assert "Tool call: get_weather(" in out  # the backend forces the call
    assert re.search(r"Usage: 3 requests, \d+ prompt \+ \d+ completion tokens", out)


# --- the backend helper ------------------------------------------------------------------


class _FakeLocalBackend(SyntheticBackend):
    closed = False

    @staticmethod
    def available() -> bool:
        return True

    def __enter__(self) -> _FakeLocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        type(self).closed = True


def test_connect_prefers_the_local_model_when_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_FakeLocalBackend, "closed", False)
    fake = ModuleType("local_model")
    fake.LocalModelBackend = _FakeLocalBackend  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_wandb_inference.testing.local_model", fake)
    monkeypatch.delenv("WB_EXAMPLES_BACKEND")
    with load("_target").connect() as target:
        assert target.language_model and not target.live
        assert target.chat().invoke("hi").text.startswith("[emulator]")
    assert _FakeLocalBackend.closed
    assert (
        "local emulator with SmolLM2-135M (a tiny real model; weak tool calling)"
        in capsys.readouterr().out
    )


def test_connect_falls_back_to_synthetic_without_the_local_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_wandb_inference.testing.local_model", None)
    monkeypatch.delenv("WB_EXAMPLES_BACKEND")
    with load("_target").connect() as target:
        assert not target.language_model
    assert SYNTHETIC_BANNER in capsys.readouterr().out


# --- agent -----------------------------------------------------------------------------------


def test_agent_calls_a_tool_and_answers(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("agent", capsys)
    assert SYNTHETIC_BANNER in out
    assert (
        "model calls cost_usd({'model_id': 'openai/gpt-oss-120b', 'input_tokens': 2000, 'output_tokens': 500})"
        in out
    )
    assert "tool cost_usd -> $0.000145 (at $0.03 in / $0.17 out per 1M tokens)" in out
    assert "Final answer: [emulator] The tool cost_usd returned: $0.000145" in out
    assert re.search(
        r"openai/gpt-oss-120b: 2 requests, \d+ input \(0 cached\), \d+ output, \$0\.0000", out
    )


def test_agent_tools() -> None:
    agent = load("agent")
    assert (
        agent.cost_usd.invoke({"model_id": "x/unknown", "input_tokens": 1, "output_tokens": 1})
        == "No known price for 'x/unknown'."
    )
    assert "context 131072 tokens, reasoning always" in agent.model_facts.invoke(
        {"model_id": "openai/gpt-oss-120b"}
    )


# --- tracing with Weave ----------------------------------------------------------------------


def test_tracing_without_a_key_runs_the_op_untraced(capsys: pytest.CaptureFixture[str]) -> None:
    import weave

    out = run("tracing_weave", capsys)
    assert SYNTHETIC_BANNER in out
    assert "Weave tracing skipped: Weave logs traces to W&B's servers" in out
    assert (
        '[emulator] Synthetic answer to a 2-message chat. Last user message: "Tell me a joke."'
        in out
    )
    assert weave.get_client() is None  # nothing was initialised, nothing will upload


def test_tracing_with_a_key_initialises_weave_for_the_project(
    live_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import weave

    calls: list[str] = []

    class FakeClient:
        def flush(self) -> None:
            calls.append("flush")

    def init(project: str) -> FakeClient:
        calls.append(f"init {project}")
        return FakeClient()

    monkeypatch.setattr(weave, "init", init)
    monkeypatch.setattr(weave, "finish", lambda: calls.append("finish"))
    out = run("tracing_weave", capsys)
    assert calls == ["init team/proj", "flush", "finish"]
    assert "Tracing skipped" not in out
    assert len(live_emulator.requests) == 1


_AUDITED_RUN = """
import atexit, os, runpy, sys
hosts = []
def audit(event, args):
    if event == "socket.getaddrinfo":
        hosts.append(str(args[0]))
    elif event == "socket.connect" and isinstance(args[1], tuple):
        hosts.append(str(args[1][0]))
sys.addaudithook(audit)
atexit.register(lambda: print("HOSTS", sorted(set(hosts)), file=sys.stderr))
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


def test_tracing_with_a_key_runs_offline_when_weave_is_disabled(live_emulator: Emulator) -> None:
    # weave.init with WEAVE_DISABLED runs the keyed path without W&B's trace servers;
    # WANDB_ERROR_REPORTING=false stops Weave's Sentry client, which init would start.
    env = {**os.environ, "WEAVE_DISABLED": "true", "WANDB_ERROR_REPORTING": "false"}
    proc = subprocess.run(
        [sys.executable, "-c", _AUDITED_RUN, str(EXAMPLES / "tracing_weave.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Backend: live W&B Inference (project: team/proj)" in proc.stdout
    assert "Tracing skipped" not in proc.stdout
    assert (
        '[emulator] Synthetic answer to a 2-message chat. Last user message: "Tell me a joke."'
        in proc.stdout
    )
    hosts = re.search(r"HOSTS \[(.*)\]", proc.stderr)
    assert hosts and set(re.findall(r"'([^']*)'", hosts[1])) <= LOOPBACK, proc.stderr


# --- compare_models --------------------------------------------------------------------------


def test_compare_models_table_and_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    png, md = tmp_path / "chart.png", tmp_path / "table.md"
    out = run("compare_models", capsys, "--out", str(png), "--markdown", str(md))
    assert SYNTHETIC_BANNER in out
    for model in ("meta-llama/Llama-3.1-8B-Instruct", "openai/gpt-oss-120b"):
        row = rf"\| {re.escape(model)} \| 0/8 \| 0/8 \| [1-9]\d* \| [1-9]\d* \| \d+\.\d\d \| 0\.\d{{6}} \|"
        assert re.search(row, out), out
    assert "Synthetic answers: accuracy means nothing." in out
    table = md.read_text(encoding="utf-8")
    assert table.startswith("| model | exact match | contains |") and table in out
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png", "table.md"]


def test_compare_models_scoring() -> None:
    compare = load("compare_models")
    answers = [
        "42",
        "Paris.",
        "The symbol is Au",
        "365",
        "mars",
        "Pacific Ocean",
        "Shakespeare, I think",
        "100 °C",
    ]

    class FakeTarget:
        def chat(self, model: str) -> FakeListChatModel:
            return FakeListChatModel(responses=answers)

    score = compare.evaluate(FakeTarget(), "fake")
    # exact: Paris., mars, Pacific Ocean; contains adds Au, Shakespeare and 100, not
    # "42" for "4" (whole words only) nor "365" for "366".
    assert (score.exact, score.contains) == (3, 6)
    assert score.cost_usd is None  # an unpriced model is never shown as free
    assert "| fake | 3/8 | 6/8 |" in compare.markdown([score])
    assert "| unknown price |" in compare.markdown([score])


# --- structured output, reasoning, LoRA ------------------------------------------------------


def test_structured_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("structured_output", capsys)
    assert SYNTHETIC_BANNER in out
    assert (
        "Parsed: MovieReview(title='Spirited Away', year=2001, rating=9, verdict='a masterpiece of hand-drawn animation')"
        in out
    )


def test_structured_output_returns_the_schema() -> None:
    example = load("structured_output")
    with load("_target").connect() as target:
        review = example.review_of(target.chat(), example.REVIEW)
    assert isinstance(review, example.MovieReview)
    assert (review.title, review.year, review.rating) == ("Spirited Away", 2001, 9)


def test_reasoning_block_comes_before_the_text(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("reasoning", capsys)
    invoked, streamed = out.split("== stream: blocks as they arrive ==")
    for part in (invoked, streamed):
        reasoning = part.index("[reasoning] [emulator] Synthetic reasoning")
        assert reasoning < part.index("[text] [emulator] Synthetic answer")
    assert "no reasoning block" not in out


def test_lora_on_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("lora", capsys)
    assert "Adapter: wandb-artifact:///my-team/my-project/my-lora:latest (placeholder)" in out
    assert "Answer: [emulator] Synthetic answer" in out
    assert (
        "NOT INCLUDED, no known price: wandb-artifact:///my-team/my-project/my-lora:latest" in out
    )


def test_lora_live_without_an_adapter_sends_nothing(
    live_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run("lora", capsys)
    assert "No LoRA adapter given, so nothing was sent to W&B." in out
    assert live_emulator.requests == []


def test_lora_live_with_an_adapter(
    live_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_LORA_ARTIFACT", "team/proj/support-bot:v3")
    out = run("lora", capsys)
    assert "Adapter: wandb-artifact:///team/proj/support-bot:v3\n" in out
    assert [r.model for r in live_emulator.requests] == [
        "wandb-artifact:///team/proj/support-bot:v3"
    ]


def test_lora_rejects_a_malformed_artifact(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load("lora").main(["--artifact", "my-lora"])
    assert exit_info.value.code == 2
    assert "expected team/project/name:version" in capsys.readouterr().err


# --- fleet -----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("redis-server") is None, reason=REDIS_HINT)
def test_fleet_shares_one_limit_across_worker_processes() -> None:
    # a script run: its worker processes are spawned, and import it as their __main__
    proc = subprocess.run(
        [sys.executable, "-c", _AUDITED_RUN, str(EXAMPLES / "fleet.py")],
        env=env_without_key(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert SYNTHETIC_BANNER in proc.stdout
    assert "Coordination: a local redis-server on 127.0.0.1:" in proc.stdout
    for worker in range(4):
        assert f"worker {worker}: 6 answered, 0 failed, $0.0000" in proc.stdout
    assert "24 of 24 questions answered by 4 worker processes" in proc.stdout
    assert "most in flight at once: 4;" in proc.stdout
    hosts = re.search(r"HOSTS \[(.*)\]", proc.stderr)
    assert hosts and set(re.findall(r"'([^']*)'", hosts[1])) <= LOOPBACK, proc.stderr


def test_fleet_without_redis_says_how_to_get_it(tmp_path: Path) -> None:
    env = {**env_without_key(), "PATH": str(tmp_path)}  # no redis-server on it
    proc = subprocess.run(
        [sys.executable, "examples/fleet.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Fleet mode needs Redis, and there is none" in proc.stdout
    assert "apt-get install -y redis-server" in proc.stdout
    assert "Skipping." in proc.stdout
