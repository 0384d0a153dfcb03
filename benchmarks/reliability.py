"""Reliability benchmark: ``ChatWBInference`` vs ``ChatOpenAI`` wired by hand.

Both clients talk, in this one process, to the local W&B Inference emulator on
127.0.0.1 (``langchain_wandb_inference.testing.Emulator``), which injects the failures
W&B Inference produces: quota and auth errors, 500s, concurrency 429s, an overloaded
model, and a concurrency limit under a batch.  ``ChatWBInference`` runs with its
default settings; ``ChatOpenAI`` runs as users wire it today (the SDK's default two
retries, plus ``.with_retry()`` / ``.with_fallbacks()`` where they would add them).

Usage::

    python benchmarks/reliability.py [--quick]

Prints a Markdown table and writes it to ``benchmarks/results.md``, with the raw
numbers in ``benchmarks/results.json``.  It is a benchmark, not a test: targets are
reported as PASS/FAIL and the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import langchain_core
import langchain_openai
import openai
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

import langchain_wandb_inference
from langchain_wandb_inference import ChatWBInference
from langchain_wandb_inference.testing import Emulator, Fault, set_testing

T = TypeVar("T")

PRIMARY = "meta-llama/Llama-3.1-8B-Instruct"
FALLBACK = "meta-llama/Llama-3.3-70B-Instruct"
API_KEY = "emulator-key"
PROMPT = "Say hello in one short sentence."
TOOL_PROMPT = "What is the weather in Paris? Use get_weather."

FALLBACK_LATENCY = 0.1  # seconds per answer in the fallback scenario (one round trip)
BATCH_SIZE = 64
BATCH_LATENCY = 0.2
BATCH_LIMIT = 4
IDEAL_BATCH = BATCH_SIZE / BATCH_LIMIT * BATCH_LATENCY  # 3.2 s

SCENARIO_TIMEOUT = 60.0  # seconds per measurement
RUN_BUDGET = 200.0  # seconds for the whole run; later scenarios are skipped past it

HERE = Path(__file__).resolve().parent

Factory = Callable[[str], Runnable[Any, Any]]
"""Builds a fresh client (model instance and wrappers) for an emulator base URL."""


# --- clients ---------------------------------------------------------------------------


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny in {city}"


TOOLS = [get_weather]


def wb(base_url: str, api_key: str = API_KEY, **kwargs: Any) -> ChatWBInference:
    """``ChatWBInference`` with its defaults (retry, breaker, adaptive limiter)."""
    return ChatWBInference(model=PRIMARY, base_url=base_url, api_key=SecretStr(api_key), **kwargs)


def oa(base_url: str, model: str = PRIMARY, api_key: str = API_KEY, **kwargs: Any) -> ChatOpenAI:
    """``ChatOpenAI`` as users get it: the SDK's default ``max_retries`` (2), no timeout."""
    return ChatOpenAI(model=model, base_url=base_url, api_key=SecretStr(api_key), **kwargs)


# --- results ---------------------------------------------------------------------------


@dataclass
class Measurement:
    """One run of one client through one scenario."""

    seconds: float
    requests: int
    outcome: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    """One line of the table: a scenario measured for one client."""

    scenario: str
    client: str
    requests: str
    seconds: float | None
    outcome: str
    details: str
    target: str
    verdict: str
    """PASS, FAIL, ``-`` (no target), TIMEOUT, SKIPPED or ERROR."""
    runs: list[dict[str, Any]] = field(default_factory=list)


class Budget:
    """The whole run's time limit: scenarios past it are skipped, not started."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


class ScenarioTimeoutError(Exception):
    """A measurement did not finish within its timeout."""


def bounded(fn: Callable[[], T], timeout: float) -> T:
    """Run ``fn`` in a daemon thread; give up (and move on) after ``timeout`` seconds."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="benchmark-scenario", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ScenarioTimeoutError(f"no result after {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class BackgroundLoop:
    """One event loop for every async call of the run, as in an application.

    ``asyncio.run`` per call would not do: langchain-openai caches its async HTTP client
    per base URL, and a pooled connection from a closed loop fails the next call with
    "Event loop is closed" (for both clients alike).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="benchmark-loop", daemon=True)
        thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (call from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


LOOP = BackgroundLoop()


def fresh(emu: Emulator) -> None:
    """Forget process-wide limiter and breaker state, and the emulator's scripts and log."""
    set_testing(False)  # fresh gates and circuits, real retries
    emu.reset()


def outcome_of(exc: BaseException) -> str:
    return type(exc).__name__


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def summarize(
    scenario: str,
    client: str,
    runs: Sequence[Measurement],
    details: str,
    target: str,
    check: Callable[[Row], bool] | None,
) -> Row:
    """Fold repeated runs into a row: median time, request counts, commonest outcome."""
    counts = sorted({m.requests for m in runs})
    requests = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    outcome = Counter(m.outcome for m in runs).most_common(1)[0][0]
    row = Row(
        scenario=scenario,
        client=client,
        requests=requests,
        seconds=statistics.median(m.seconds for m in runs),
        outcome=outcome,
        details=details,
        target=target,
        verdict="-",
        runs=[asdict(m) for m in runs],
    )
    if check is not None:
        row.verdict = "PASS" if check(row) else "FAIL"
    return row


def failed_row(scenario: str, client: str, target: str, verdict: str, why: str) -> Row:
    return Row(scenario, client, "-", None, verdict, why, target, verdict)


# --- scenarios: errors and retries -------------------------------------------------------


def invoke_once(emu: Emulator, runnable: Runnable[Any, Any], prompt: str = PROMPT) -> Measurement:
    """Invoke once; time to the answer or the error, and the requests the emulator saw."""
    start = time.perf_counter()
    try:
        message = runnable.invoke(prompt)
        outcome = "answer"
        model = (
            message.response_metadata.get("model_name")
            if isinstance(message, BaseMessage)
            else None
        )
    except Exception as exc:
        outcome, model = outcome_of(exc), None
    seconds = time.perf_counter() - start
    return Measurement(seconds, emu.count(), outcome, {"model": model})


@dataclass(frozen=True)
class Client:
    label: str
    build: Factory
    reps: int


def invoke_rows(
    emu: Emulator,
    budget: Budget,
    scenario: str,
    faults: Sequence[Fault],
    clients: Sequence[Client],
    target: str = "",
    check: Callable[[Row], bool] | None = None,
    always: Fault | None = None,
) -> list[Row]:
    """Measure ``invoke`` for each client.

    ``faults`` are scripted for the primary model's next requests (a transient
    failure); ``always`` answers every request (a persistent one, e.g. no credits).
    """
    rows = []
    for client in clients:
        if budget.left() < 5:
            rows.append(failed_row(scenario, client.label, target, "SKIPPED", "run budget spent"))
            continue

        def one(client: Client = client) -> Measurement:
            fresh(emu)
            emu.script(PRIMARY, *faults)
            emu.always(PRIMARY, always)
            return invoke_once(emu, client.build(emu.base_url))

        try:
            runs = [bounded(one, SCENARIO_TIMEOUT) for _ in range(client.reps)]
        except ScenarioTimeoutError as exc:
            rows.append(failed_row(scenario, client.label, target, "TIMEOUT", str(exc)))
            continue
        rows.append(summarize(scenario, client.label, runs, "", target, check))
    return rows


def fails_fast(row: Row) -> bool:
    """Quota/auth target: an error (not an answer), one request, in under 50 ms."""
    return (
        row.outcome != "answer"
        and row.requests == "1"
        and row.seconds is not None
        and row.seconds < 0.050
    )


def error_rows(emu: Emulator, budget: Budget, reps: int) -> list[Row]:
    target = "1 request, < 50 ms"
    clients = [
        Client("ChatWBInference", wb, reps),
        Client("ChatOpenAI", oa, reps),
        Client("ChatOpenAI.with_retry()", lambda url: oa(url).with_retry(), 1),
    ]
    rows = invoke_rows(
        emu, budget, "quota (402)", [], clients, target, fails_fast, always=Fault.quota()
    )
    rows += invoke_rows(
        emu,
        budget,
        "quota as 429 (2025 form)",
        [],
        clients,
        target,
        fails_fast,
        always=Fault.quota_429(),
    )
    bad_key = [
        Client("ChatWBInference", lambda url: wb(url, api_key="wrong-key"), reps),
        Client("ChatOpenAI", lambda url: oa(url, api_key="wrong-key"), reps),
        Client("ChatOpenAI.with_retry()", lambda url: oa(url, api_key="wrong-key").with_retry(), 1),
    ]
    rows += invoke_rows(emu, budget, "auth (401, bad key)", [], bad_key, target, fails_fast)
    return rows


def retry_rows(emu: Emulator, budget: Budget, reps: int) -> list[Row]:
    rows = invoke_rows(
        emu,
        budget,
        "2x500 then success",
        [Fault.server_error(), Fault.server_error()],
        [Client("ChatWBInference", wb, reps), Client("ChatOpenAI", oa, reps)],
    )
    rows += invoke_rows(
        emu,
        budget,
        "3x concurrency-429 then success",
        [Fault.concurrency()] * 3,
        [
            Client("ChatWBInference", wb, reps),
            Client("ChatOpenAI", oa, reps),
            Client("ChatOpenAI.with_retry()", lambda url: oa(url).with_retry(), reps),
        ],
    )
    return rows


# --- scenario: a slow but progressing answer ---------------------------------------------

SLOW_GENERATION = 4.0  # seconds the model takes to generate its answer
SLOW_TIMEOUT = 2.0  # the per-request timeout both clients are given


def slow_rows(emu: Emulator, budget: Budget, reps: int) -> list[Row]:
    """A model slower than the timeout: is the answer (which keeps coming) thrown away?

    Non-streamed, nothing arrives for ``SLOW_GENERATION`` seconds; streamed, tokens arrive
    all along.  ChatWBInference retries a timed-out non-streamed attempt as a stream.
    """
    target = f"an answer, <= {SLOW_TIMEOUT + SLOW_GENERATION:g} s (+25%)"
    limit = 1.25 * (SLOW_TIMEOUT + SLOW_GENERATION)

    def answered_in_time(row: Row) -> bool:
        return row.outcome == "answer" and row.seconds is not None and row.seconds <= limit

    clients = [
        Client("ChatWBInference(timeout=2)", partial(wb, timeout=SLOW_TIMEOUT), reps),
        Client(
            "ChatWBInference(timeout=2, streaming=True)",
            partial(wb, timeout=SLOW_TIMEOUT, streaming=True),
            reps,
        ),
        Client("ChatOpenAI(timeout=2)", partial(oa, timeout=SLOW_TIMEOUT), 1),
    ]
    scenario = f"slow answer ({SLOW_GENERATION:g} s to generate, timeout {SLOW_TIMEOUT:g} s)"
    return invoke_rows(
        emu,
        budget,
        scenario,
        [],
        clients,
        target,
        answered_in_time,
        always=Fault.slow_generation(SLOW_GENERATION),
    )


# --- scenario: fallback ----------------------------------------------------------------


def round_trip(emu: Emulator, reps: int) -> float:
    """Median time of one successful plain request: the unit of "one round trip"."""
    times = []
    for _ in range(max(reps, 3)):
        fresh(emu)
        times.append(invoke_once(emu, oa(emu.base_url, model=FALLBACK)).seconds)
    return statistics.median(times)


def fallback_once(emu: Emulator, build: Factory, prompt: str) -> Measurement:
    """Primary always 503: time to the fallback's answer, and what the fallback was sent."""
    fresh(emu)
    emu.always(PRIMARY, Fault.overloaded())
    runnable = build(emu.base_url)
    started = time.monotonic()
    measured = invoke_once(emu, runnable, prompt)
    ended = started + measured.seconds
    log = emu.requests
    primary = [r for r in log if r.model == PRIMARY]
    backup = [r for r in log if r.model == FALLBACK]
    carried = [bool(isinstance(r.body, dict) and r.body.get("tools")) for r in backup]
    measured.extra.update(
        primary_requests=len(primary),
        fallback_requests=len(backup),
        fallback_carried_tools=all(carried) if carried else None,
        after_primary_failure=ended - primary[0].ended if primary else None,
    )
    return measured


def fallback_rows(emu: Emulator, budget: Budget, reps: int) -> list[Row]:
    rtt = round_trip(emu, reps)
    target = f"answer <= 1 round trip ({fmt_seconds(rtt)}) after the primary's 503"
    variants: list[tuple[str, str, Factory, bool]] = [
        (
            "ChatWBInference(fallback_models=[fb])",
            "no tools",
            lambda u: wb(u, fallback_models=[FALLBACK]),
            False,
        ),
        (
            "ChatWBInference(fallback_models=[fb]).bind_tools(T)",
            "tools",
            lambda u: wb(u, fallback_models=[FALLBACK]).bind_tools(TOOLS),
            True,
        ),
        (
            "ChatOpenAI.with_fallbacks([fb])",
            "no tools",
            lambda u: oa(u).with_fallbacks([oa(u, FALLBACK)]),
            False,
        ),
        (
            "ChatOpenAI.bind_tools(T).with_fallbacks([fb])",
            "tools",
            lambda u: oa(u).bind_tools(TOOLS).with_fallbacks([oa(u, FALLBACK)]),
            True,
        ),
    ]
    rows = []
    for label, kind, build, tools in variants:
        scenario = f"primary 503 + fallback ({kind})"
        if budget.left() < 10:
            rows.append(failed_row(scenario, label, target, "SKIPPED", "run budget spent"))
            continue
        prompt = TOOL_PROMPT if tools else PROMPT
        try:
            runs = [
                bounded(partial(fallback_once, emu, build, prompt), SCENARIO_TIMEOUT)
                for _ in range(reps)
            ]
        except ScenarioTimeoutError as exc:
            rows.append(failed_row(scenario, label, target, "TIMEOUT", str(exc)))
            continue
        extra = runs[0].extra
        after = statistics.median(
            m.extra["after_primary_failure"]
            for m in runs
            if m.extra["after_primary_failure"] is not None
        )
        carried = extra["fallback_carried_tools"]
        details = (
            f"primary {extra['primary_requests']} + fallback {extra['fallback_requests']} req; "
            f"answer {fmt_seconds(after)} after primary's first 503; answered by {extra['model']}"
        )
        if tools:
            details += f"; **fallback request carried tools: {'yes' if carried else 'NO'}**"

        def check(
            row: Row, after: float = after, tools: bool = tools, carried: Any = carried
        ) -> bool:
            return (
                row.outcome == "answer" and after <= 1.25 * rtt and (carried is True or not tools)
            )

        rows.append(summarize(scenario, label, runs, details, target, check))
    return rows


# --- scenario: batch under a concurrency limit ---------------------------------------


def batch_once(emu: Emulator, build: Factory, use_async: bool) -> Measurement:
    """64 prompts through ``batch`` / ``abatch`` (default config) against 4 slots."""
    fresh(emu)
    runnable = build(emu.base_url)
    prompts = [f"Prompt number {i}: say hello." for i in range(BATCH_SIZE)]
    start = time.perf_counter()
    if use_async:
        results = LOOP.run(runnable.abatch(prompts, return_exceptions=True))
    else:
        results = runnable.batch(prompts, return_exceptions=True)
    seconds = time.perf_counter() - start
    errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    return Measurement(
        seconds,
        emu.count(),
        "all answered" if not errors else f"{sum(errors.values())} failed",
        {
            "ratio": seconds / IDEAL_BATCH,
            "status_429": emu.count(status=429),
            "failed": sum(errors.values()),
            "errors": dict(errors),
            "max_in_flight_seen": emu.max_in_flight_seen.get(PRIMARY, 0),
        },
    )


def batch_rows(emu: Emulator, budget: Budget, reps: int) -> list[Row]:
    target = f"<= 1.2x ideal ({IDEAL_BATCH:.1f} s), 0 failed, < 16 429s"
    clients = [
        Client("ChatWBInference", wb, reps),
        Client("ChatOpenAI", oa, reps),
        Client("ChatOpenAI.with_retry()", lambda u: oa(u).with_retry(), 1),  # the slow one
    ]
    rows = []
    for method in ("batch", "abatch"):
        scenario = f"{method} {BATCH_SIZE} @ limit {BATCH_LIMIT}, {BATCH_LATENCY:g} s"
        for client in clients:
            label = client.label
            if budget.left() < 20:
                rows.append(failed_row(scenario, label, target, "SKIPPED", "run budget spent"))
                continue
            try:
                runs = [
                    bounded(
                        partial(batch_once, emu, client.build, method == "abatch"),
                        SCENARIO_TIMEOUT,
                    )
                    for _ in range(client.reps)
                ]
            except ScenarioTimeoutError as exc:
                rows.append(failed_row(scenario, label, target, "TIMEOUT", str(exc)))
                continue
            worst = max(runs, key=lambda m: m.seconds)
            ratio = statistics.median(m.extra["ratio"] for m in runs)
            n429 = max(m.extra["status_429"] for m in runs)
            failed = max(m.extra["failed"] for m in runs)
            each = "/".join(f"{m.extra['ratio']:.2f}" for m in runs)
            details = (
                f"wall/ideal {ratio:.2f}x (runs {each}); 429s {n429}; failed items {failed}; "
                f"max in flight {worst.extra['max_in_flight_seen']}"
            )
            if worst.extra["errors"]:
                details += f"; errors {worst.extra['errors']}"

            def check(
                row: Row, ratio: float = ratio, n429: int = n429, failed: int = failed
            ) -> bool:
                return ratio <= 1.2 and failed == 0 and n429 < 16

            rows.append(summarize(scenario, label, runs, details, target, check))
    return rows


# --- scenario: per-call overhead -----------------------------------------------------------


def timed_block(llm: Runnable[Any, Any], method: str, n: int) -> list[tuple[float, float]]:
    """``n`` sequential calls of ``method``: (wall, calling thread's CPU) seconds each.

    ``ainvoke`` calls run one block per trip to the benchmark's event loop, timed inside
    it, so that handing the block to the loop is not counted.
    """

    def one() -> tuple[float, float]:
        start, start_cpu = time.perf_counter(), time.thread_time()
        llm.invoke(PROMPT)
        return time.perf_counter() - start, time.thread_time() - start_cpu

    async def block() -> list[tuple[float, float]]:
        times = []
        for _ in range(n):
            start, start_cpu = time.perf_counter(), time.thread_time()
            await llm.ainvoke(PROMPT)
            times.append((time.perf_counter() - start, time.thread_time() - start_cpu))
        return times

    return [one() for _ in range(n)] if method == "invoke" else LOOP.run(block())


def overhead_rows(
    emu: Emulator, budget: Budget, calls: int, method: str = "invoke", block: int = 10
) -> list[Row]:
    """Sequential ``invoke`` (or ``ainvoke``) on a zero-latency emulator, the clients in
    alternating blocks.

    The clients take turns in blocks of ``block`` calls (A B B A A B ...), so that drift
    and bursts of load from elsewhere on the machine hit both alike.  The verdict uses
    the median over adjacent block pairs of (ChatWBInference block median / ChatOpenAI
    block median), which a burst covering a block or two cannot move; the overall
    medians and means are reported beside it, and so is the ratio of the calling
    thread's CPU time per call, which load from other processes barely moves.
    """
    scenario = f"per-call overhead ({calls} {method}s each, 0 ms server)"
    target = f"<= 1.10x ChatOpenAI.{method} (paired median)"
    if budget.left() < 10:
        return [failed_row(scenario, "ChatWBInference", target, "SKIPPED", "run budget spent")]
    fresh(emu)
    clients: dict[str, Runnable[Any, Any]] = {
        "ChatWBInference": wb(emu.base_url),
        "ChatOpenAI": oa(emu.base_url),
    }
    blocks: dict[str, list[list[float]]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}

    def measure() -> None:
        for _ in range(5):  # warm-up: connections, caches, first-call code paths
            for llm in clients.values():
                timed_block(llm, method, block)
        gc.collect()
        names = list(clients)
        for index in range(max(1, calls // block)):
            order = names if index % 2 == 0 else names[::-1]
            for name in order:
                times = timed_block(clients[name], method, block)
                blocks[name].append([wall for wall, _ in times])
                cpu[name].extend(used for _, used in times)
            emu.reset()  # keep the request log (and its lock) small

    try:
        bounded(measure, SCENARIO_TIMEOUT)
    except ScenarioTimeoutError as exc:
        return [failed_row(scenario, "ChatWBInference", target, "TIMEOUT", str(exc))]
    every = {name: [t for b in runs for t in b] for name, runs in blocks.items()}
    median = {name: statistics.median(t) for name, t in every.items()}
    mean = {name: statistics.fmean(t) for name, t in every.items()}
    paired = statistics.median(
        statistics.median(ours) / statistics.median(theirs)
        for ours, theirs in zip(blocks["ChatWBInference"], blocks["ChatOpenAI"], strict=True)
    )
    ratio_median = median["ChatWBInference"] / median["ChatOpenAI"]
    ratio_mean = mean["ChatWBInference"] / mean["ChatOpenAI"]
    cpu_median = {name: statistics.median(t) for name, t in cpu.items()}
    ratio_cpu = cpu_median["ChatWBInference"] / cpu_median["ChatOpenAI"]
    load = os.getloadavg()[0]
    rows = []
    for name in clients:
        extra: dict[str, Any] = {
            "median": median[name],
            "mean": mean[name],
            "cpu_median": cpu_median[name],
        }
        details = (
            f"median {fmt_seconds(median[name])}, mean {fmt_seconds(mean[name])}, "
            f"client CPU {fmt_seconds(cpu_median[name])}"
        )
        check: Callable[[Row], bool] | None = None
        if name == "ChatWBInference":
            added = median["ChatWBInference"] - median["ChatOpenAI"]
            details += (
                f"; ratio paired {paired:.3f}x, of medians {ratio_median:.3f}x, "
                f"of means {ratio_mean:.3f}x, of client CPU {ratio_cpu:.3f}x; "
                f"+{added * 1e6:.0f} us per call; load average {load:.1f} "
                f"on {os.cpu_count()} CPUs"
            )
            extra.update(
                ratio_paired=paired,
                ratio_median=ratio_median,
                ratio_mean=ratio_mean,
                ratio_cpu=ratio_cpu,
                load_average=load,
            )
            check = lambda _row: paired <= 1.10  # noqa: E731
        run = Measurement(median[name], len(every[name]), "answers", extra)
        label_target = target if name == "ChatWBInference" else "(reference)"
        rows.append(summarize(scenario, name, [run], details, label_target, check))
    return rows


# --- output ------------------------------------------------------------------------------


def markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    lines = [
        "# Reliability benchmark: ChatWBInference vs ChatOpenAI",
        "",
        f"Run {meta['date']} on {meta['machine']} (Python {meta['python']}; "
        f"langchain-core {meta['langchain_core']}, langchain-openai {meta['langchain_openai']}, "
        f"openai {meta['openai']}; {'quick' if meta['quick'] else 'full'} run, "
        f"{meta['reps']} repetition(s) per row, median shown; "
        f"total {meta['total_seconds']:.0f} s; 1-minute load average at start "
        f"{meta['load_average_at_start']:.1f}).",
        "",
        "Absolute times depend on the machine; compare the clients (ratios), not the numbers.",
        "",
        "| Scenario | Client | Requests | Time | Outcome | Details | Target | Result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row.scenario,
            f"`{row.client}`",
            row.requests,
            fmt_seconds(row.seconds),
            row.outcome,
            row.details or "",
            row.target or "-",
            f"**{row.verdict}**" if row.verdict in ("FAIL", "TIMEOUT", "ERROR") else row.verdict,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def metadata(args: argparse.Namespace, reps: int) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "langchain_core": langchain_core.__version__,
        "langchain_openai": getattr(langchain_openai, "__version__", "?"),
        "openai": openai.__version__,
        "langchain_wandb_inference": langchain_wandb_inference.__version__,
        "quick": args.quick,
        "reps": reps,
        "primary": PRIMARY,
        "fallback": FALLBACK,
        "chatopenai_max_retries": oa("http://127.0.0.1:9/v1").root_client.max_retries,
    }


def hermetic_environment() -> None:
    """Only ever talk to 127.0.0.1, and let no W&B/OpenAI setting change the clients."""
    for name in (
        "WANDB_API_KEY",
        "WANDB_PROJECT",
        "WANDB_ENTITY",
        "WANDB_INFERENCE_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_MAX_RETRIES",
    ):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    for name in ("langchain_wandb_inference", "openai", "httpx", "langchain_core"):
        logging.getLogger(name).setLevel(logging.ERROR)


def warm_up() -> None:
    """Pay first-use costs (imports, client construction paths) outside any measurement."""
    with Emulator() as emu:
        for build in (wb, oa):
            build(emu.base_url).invoke(PROMPT)
            LOOP.run(build(emu.base_url).ainvoke(PROMPT))
    set_testing(False)  # fresh gates and circuits, real retries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one repetition, fewer calls")
    args = parser.parse_args(argv)
    reps = 1 if args.quick else 3
    calls = 100 if args.quick else 400
    hermetic_environment()
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    budget = Budget(RUN_BUDGET)
    warm_up()

    sections: list[tuple[str, Callable[[Emulator], list[Row]], dict[str, Any]]] = [
        (  # first: a quiet process
            "overhead",
            lambda e: overhead_rows(e, budget, calls) + overhead_rows(e, budget, calls, "ainvoke"),
            {},
        ),
        ("errors", lambda e: error_rows(e, budget, reps), {}),
        ("retries", lambda e: retry_rows(e, budget, reps), {}),
        ("slow", lambda e: slow_rows(e, budget, reps), {}),
        ("fallback", lambda e: fallback_rows(e, budget, reps), {"latency": FALLBACK_LATENCY}),
        (
            "batch",
            lambda e: batch_rows(e, budget, reps),
            {"latency": BATCH_LATENCY, "concurrency_limit": BATCH_LIMIT},
        ),
    ]
    results: dict[str, list[Row]] = {}
    for name, section, emulator_args in sections:
        print(f"[{time.monotonic() - started:5.1f}s] {name} ...", file=sys.stderr, flush=True)
        with Emulator(api_key=API_KEY, **emulator_args) as emu:
            try:
                results[name] = section(emu)
            except Exception as exc:  # report and carry on with the other sections
                error = f"{outcome_of(exc)}: {exc}"
                results[name] = [failed_row(name, "-", "-", "ERROR", error)]
            finally:
                fresh(emu)
    shown = ("errors", "retries", "slow", "fallback", "batch", "overhead")
    rows = [row for name in shown for row in results.get(name, [])]

    meta = metadata(args, reps)
    meta["total_seconds"] = time.monotonic() - started
    meta["load_average_at_start"] = load_at_start
    table = markdown(rows, meta)
    print(table)
    (HERE / "results.md").write_text(table)
    (HERE / "results.json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2, default=str) + "\n"
    )
    print(f"wrote {HERE / 'results.md'} and {HERE / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
