"""``wb-inference probe``: the contract's assumptions observed on 127.0.0.1 servers.

* On the bundled emulator every assumption is ok (or, for a short explicit list, not
  observable offline): the contract's expected values and the emulator cannot drift.
* On servers that behave differently (a tiny one written here, the emulator with the
  real local llama.cpp model) the differences show, and ``learn`` points at the code.
* The report and cassettes hold neither the key nor the project; a leak stops the write.
* The budget cap stops the probe before it spends more.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from langchain_wandb_inference.cli import ExitCode, main
from langchain_wandb_inference.models import Lifecycle, all_models
from langchain_wandb_inference.testing import learn
from langchain_wandb_inference.testing.local_model import LocalModelBackend
from langchain_wandb_inference.testing.probe import report as probe_report
from langchain_wandb_inference.testing.probe import run as probe_run
from langchain_wandb_inference.testing.probe.assumptions import (
    ASSUMPTIONS,
    BUDGET,
    BY_NAME,
    DIFFERS,
    OFFLINE,
    OK,
)
from langchain_wandb_inference.testing.probe.wire import Service

pytestmark = pytest.mark.emulator

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GPT_OSS = "openai/gpt-oss-20b"
# Recognisable, free of common words: any 6-character piece in a file can only be the key.
FAKE_KEY = "Qv7Jx2Wm9Kd4Tz8Rb3Hn"
PROJECT = "zebra-probe-team/quokka-probe-project"
NOT_OBSERVABLE_OFFLINE = {"logprobs", "errors.context_overflow"}


def _toggleable_cached() -> str:
    for info in all_models():
        if (
            info.lifecycle is not Lifecycle.RETIRED
            and info.reasoning_toggleable
            and info.price is not None
            and info.price.cached_input is not None
        ):
            return info.id
    pytest.skip("no catalog model that toggles reasoning and has a cached-input price")


def _probe(cli_args: list[str], out: Path) -> tuple[int, dict[str, Any]]:
    code = main([*cli_args, "--out", str(out)])
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    return code, report


def _by(report: dict[str, Any], name: str, model: str | None = None) -> dict[str, Any]:
    return next(r for r in report["results"] if r["assumption"] == name and r["model"] == model)


# --- the emulator agrees with the contract -----------------------------------------------


def test_every_assumption_is_ok_on_the_emulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CI guard: expected values (probe/assumptions.py) and the emulator never drift apart."""
    models = [LLAMA, GPT_OSS, _toggleable_cached()]
    code, report = _probe(["--emulator", "probe", "--models", ",".join(models)], tmp_path)
    assert code == ExitCode.OK, capsys.readouterr().err
    observed = {r["assumption"] for r in report["results"]}
    assert observed == {a.name for a in ASSUMPTIONS}  # these models reach every assumption
    wrong = [r for r in report["results"] if r["verdict"] not in (OK, OFFLINE)]
    assert not wrong, json.dumps(wrong, indent=2)
    offline = {r["assumption"] for r in report["results"] if r["verdict"] == OFFLINE}
    assert offline == NOT_OBSERVABLE_OFFLINE
    assert all(BY_NAME[name].offline for name in offline)
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["ASSUMPTION", "MODEL"]
    assert len(out.splitlines()) == len(report["results"]) + 1


def test_an_emulator_that_differs_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The all-ok test above can fail: the legacy reasoning field is reported as differing."""
    real = probe_run.emulator
    monkeypatch.setattr(
        probe_run,
        "emulator",
        lambda key=None, project=None: real(key, project, legacy_reasoning_field=True),
    )
    code, report = _probe(["--emulator", "probe", "--models", GPT_OSS], tmp_path)
    assert code == ExitCode.OK
    assert _by(report, "reasoning.field", GPT_OSS)["verdict"] == DIFFERS
    assert _by(report, "reasoning.field", GPT_OSS)["observed"] == "message.reasoning_content"


# --- a server that is not the contract ------------------------------------------------------


class _Different(BaseHTTPRequestHandler):
    """Chat Completions with ``reasoning_content`` (not ``reasoning``) and no usage chunk."""

    def do_GET(self) -> None:
        self._send(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": GPT_OSS,
                        "object": "model",
                        "created": 0,
                        "owned_by": "x",
                        "root": GPT_OSS,
                    }
                ],
            },
        )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body["model"]
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": "Hello there.",
                "reasoning_content": "Think.",
            }
            usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self._send(
                200,
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                },
            )
            return
        deltas = [
            {"role": "assistant", "content": ""},
            {"reasoning_content": "Think."},
            {"content": "Hello."},
        ]
        chunks = [
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": d, "finish_reason": None}],
            }
            for d in deltas
        ]
        chunks.append(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        self._raw(200, "text/event-stream", data.encode())

    def _send(self, status: int, body: Any) -> None:
        self._raw(status, "application/json", json.dumps(body).encode())

    def _raw(self, status: int, kind: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def different_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Different)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_different_server_shows_its_differences(
    different_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    code, report = _probe(
        ["--base-url", different_server, "--timeout", "5", "probe", "--models", GPT_OSS], tmp_path
    )
    assert code == ExitCode.OK, capsys.readouterr().err
    assert report["target"] == "service" and report["base_url"] == different_server
    differs = {
        (r["assumption"], r["observed"]) for r in report["results"] if r["verdict"] == DIFFERS
    }
    assert ("reasoning.field", "message.reasoning_content") in differs
    assert ("stream.reasoning_delta", "delta.reasoning_content") in differs
    assert ("stream.usage_chunk", "no usage chunk") in differs
    assert ("auth.bad_key", "200") in differs  # it checks no key at all
    assert _by(report, "stream.done", GPT_OSS)["verdict"] == OK
    assert _by(report, "package.invoke", GPT_OSS)["verdict"] == OK  # the package reads both names
    capsys.readouterr()

    assert learn.main([str(tmp_path / "report.json")]) == 0
    advice = capsys.readouterr().out
    block = advice[advice.index("reasoning.field [openai/gpt-oss-20b]") :]
    assert "observed:            message.reasoning_content" in block
    assert "emulator today:      message.reasoning (ok)" in block
    assert "legacy_reasoning_field" in block and "_attach_reasoning" in block
    assert "testing/emulator.py `Emulator._stream` (the usage event)" in advice
    assert "reasoning always" in block  # the catalog today


@pytest.mark.skipif(
    not LocalModelBackend.available(),
    reason="local llama.cpp model not installed (.ci/install-local-model)",
)
def test_the_local_llama_cpp_backend_shows_its_differences(tmp_path: Path) -> None:
    """A real model behind the emulator: no reasoning, and a real context window."""
    with LocalModelBackend() as backend, probe_run.emulator(backend=backend) as emu:
        service = Service(emu.base_url, emu.api_key, probe_run.PROBE_PROJECT, timeout=120)
        run = probe_run.run(service, [GPT_OSS])  # not offline: everything is sent
    results = {(r.assumption.name, r.model): r for r in run.results}
    reasoning = results["reasoning.field", GPT_OSS]
    assert (reasoning.verdict, reasoning.observed) == (DIFFERS, "no reasoning text")
    assert results["stream.reasoning_delta", GPT_OSS].observed == "no reasoning deltas"
    overflow = results["errors.context_overflow", None]  # llama.cpp has a real window
    assert (overflow.verdict, overflow.observed) == (OK, "400 WBContextOverflowError")
    assert (
        results["stream.usage_chunk", GPT_OSS].verdict == OK
    )  # the gateway part is the emulator's
    probe_report.write(run, tmp_path)


# --- secrets ----------------------------------------------------------------------------------


def _pieces(secret: str, size: int = 6) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def _leaks(text: str) -> list[str]:
    return [
        p
        for p in _pieces(FAKE_KEY) | {PROJECT, "zebra-probe-team", "quokka-probe-project"}
        if p in text
    ]


@pytest.mark.parametrize("offline", [True, False])
def test_no_secret_in_any_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    offline: bool,
) -> None:
    """Key and project appear in no file and no output; offline=False sends every probe."""
    if offline:
        argv = ["--emulator", "--api-key", FAKE_KEY, "probe", "--project", PROJECT]
        code, report = _probe(argv, tmp_path)
    else:
        with probe_run.emulator(FAKE_KEY, PROJECT) as emu:
            monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
            monkeypatch.setenv("WANDB_PROJECT", PROJECT)
            code, report = _probe(["--base-url", emu.base_url, "probe"], tmp_path)
            assert len(emu.requests) == report["requests_sent"]
            assert any(
                r.headers.get("openai-project") == PROJECT for r in emu.requests
            )  # it was sent
    assert code == ExitCode.OK
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.suffix == ".yaml" for p in files)
    for path in files:
        text = path.read_text()
        assert not _leaks(text), path
        assert "x-stainless" not in text.lower() and "user-agent" not in text.lower(), path
    captured = capsys.readouterr()
    assert not _leaks(captured.out + captured.err)
    assert "[REDACTED]" in (tmp_path / "cassettes" / "auth.yaml").read_text()


def test_the_leak_check_can_fail() -> None:
    """The check above sees the key when it is there."""
    assert _leaks(f"Bearer {FAKE_KEY}") and _leaks(PROJECT)


def test_a_leak_stops_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Secret-shaped text that survived scrubbing: exit 1, and no file is written."""
    real = probe_run.run

    def leaky(*args: Any, **kwargs: Any) -> probe_run.ProbeRun:
        run = real(*args, **kwargs)
        run.cassettes["cassettes/leak.yaml"] = f"authorization: Bearer {FAKE_KEY}\n"
        return run

    monkeypatch.setattr(probe_run, "run", leaky)
    out = tmp_path / "out"
    code = main(
        ["--emulator", "--api-key", FAKE_KEY, "probe", "--models", LLAMA, "--out", str(out)]
    )
    assert code == ExitCode.UNEXPECTED
    assert not out.exists()
    err = capsys.readouterr().err
    assert "cassettes/leak.yaml" in err and "nothing was written" in err
    assert not _leaks(err)


# --- the cost cap -------------------------------------------------------------------------------


def test_the_budget_stops_the_probe_before_it_spends_more() -> None:
    def probe(budget: float) -> tuple[probe_run.ProbeRun, int]:
        with probe_run.emulator() as emu:
            service = Service(emu.base_url, emu.api_key, probe_run.PROBE_PROJECT, emulator=emu)
            return probe_run.run(service, budget_usd=budget), len(emu.requests)

    full, full_requests = probe(probe_run.DEFAULT_BUDGET_USD)
    capped, capped_requests = probe(0.0002)
    verdicts = [r.verdict for r in capped.results]
    first = verdicts.index(BUDGET)
    assert OK in verdicts[:first] and set(verdicts[first:]) == {BUDGET}
    assert "Budget exceeded: no request was sent" in (capped.results[first].note or "")
    assert BUDGET not in {r.verdict for r in full.results}
    # Every request the emulator saw is in a cassette, and no step after the refusal has one.
    assert capped_requests == capped.requests < full_requests == full.requests
    refused_step = capped.results[first].assumption.name
    later = [r for r in capped.results[first:] if r.assumption.name != refused_step]
    assert later and all(r.cassette is None for r in later)
    recorded_steps = {
        path.split("/")[1].split("__")[0].removesuffix(".yaml") for path in capped.cassettes
    }
    assert "burst" not in recorded_steps and "package" not in recorded_steps
    assert {"auth", "project", "models"} <= recorded_steps


def test_the_budget_is_printed_before_the_probe_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _probe(
        ["--emulator", "probe", "--budget-usd", "0.0001", "--models", LLAMA], tmp_path
    )
    assert code == ExitCode.OK
    err = capsys.readouterr().err
    assert err.index("cost cap: $0.0001") < err.index("probing auth")
    assert report["budget"]["limit_usd"] == 0.0001 and report["skipped_for_budget"]
    assert "## Skipped for budget" in (tmp_path / "report.md").read_text()


def test_learn_on_an_all_ok_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--emulator", "probe", "--models", LLAMA, "--out", str(tmp_path)]) == ExitCode.OK
    capsys.readouterr()
    assert learn.main([str(tmp_path / "report.json")]) == 0
    assert "Nothing differs from the contract" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{}")
    assert learn.main([str(tmp_path / "bad.json")]) == 2


def test_probe_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["probe", "--budget-usd", "0"], ["probe", "--models", ","]):
        assert main(argv) == ExitCode.USAGE
    assert "usage: wb-inference" in capsys.readouterr().err
