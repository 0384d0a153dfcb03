"""Fleet benchmark: P worker processes against one concurrency limit, three ways.

P worker processes (4, then 8) each send N prompts through ``batch`` (or ``abatch``)
to one emulator (``Emulator(latency=0.2, concurrency_limit=4)``, in this process), as
a team's evaluation fleet does against W&B Inference.  Measured per row: wall time
against the ideal ceil(P*N/4) * 0.2 s, the concurrency 429s the emulator answered, the
failed items, and the most requests it saw in flight.  Three clients:

* ``ChatWBInference(redis_url=...)``: shared mode, one local ``redis-server`` (flushed
  before each row: every row starts cold);
* ``ChatWBInference()``: per-process mode (each process its own limiter);
* ``ChatOpenAI(base_url=emulator)`` wired by hand, the SDK's default retries.

Usage::

    python benchmarks/fleet.py [--quick]     # --quick: batch only

Prints a Markdown table and writes it to ``benchmarks/fleet_results.md``.  It is a
benchmark, not a test: targets are reported as PASS/FAIL and the exit status is 0
either way.  Needs ``redis-server`` on PATH (the shared rows are skipped without it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import langchain_core
import langchain_openai
import openai
import redis
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from langchain_wandb_inference import ChatWBInference
from langchain_wandb_inference.testing import Emulator
from langchain_wandb_inference.testing.redis_server import RedisServer, RedisServerMissing

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
WARM_UP_MODEL = "meta-llama/Llama-3.3-70B-Instruct"  # first-use costs, outside the measurement
API_KEY = "emulator-key"
LATENCY = 0.2
LIMIT = 4
PROMPTS = 24  # per worker
WORKERS = (4, 8)
ROW_TIMEOUT = 180.0  # seconds per row before its workers are killed

HERE = Path(__file__).resolve().parent
SPAWN = mp.get_context("spawn")


# --- the workers -------------------------------------------------------------------------


def build(client: str, base_url: str, redis_url: str | None, model: str = MODEL) -> Any:
    if client == "ChatOpenAI":
        return ChatOpenAI(model=model, base_url=base_url, api_key=SecretStr(API_KEY))
    return ChatWBInference(
        model=model, base_url=base_url, api_key=SecretStr(API_KEY), redis_url=redis_url
    )


def worker(
    client: str,
    method: str,
    base_url: str,
    redis_url: str | None,
    index: int,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """Build the client, warm up, wait for the start signal, send PROMPTS prompts, report.

    The warm-up (one call on another model: its own gate and circuit) pays the
    first-use costs — imports, client construction, connections — before the clock runs.
    """
    hermetic_environment()
    llm = build(client, base_url, redis_url)
    warm = build(client, base_url, redis_url, WARM_UP_MODEL)
    prompts = [f"Worker {index}, prompt {i}: say hello." for i in range(PROMPTS)]

    async def in_one_loop() -> list[Any]:  # ChatOpenAI's pool breaks on a second loop
        await warm.ainvoke("warm up")
        ready.release()
        go.wait()
        return await llm.abatch(prompts, return_exceptions=True)

    if method == "abatch":
        results = asyncio.run(in_one_loop())
    else:
        warm.invoke("warm up")
        ready.release()
        go.wait()
        results = llm.batch(prompts, return_exceptions=True)
    errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    out.put((time.time(), dict(errors)))


# --- one row -------------------------------------------------------------------------------


@dataclass
class Row:
    workers: int
    client: str
    method: str
    seconds: float | None
    ideal: float
    status_429: int
    failed: int
    errors: dict[str, int]
    max_in_flight: int
    target: str
    verdict: str


def run_row(
    emu: Emulator, server: RedisServer | None, workers: int, client: str, method: str
) -> Row:
    ideal = math.ceil(workers * PROMPTS / LIMIT) * LATENCY
    shared = client.endswith("(redis_url=...)")
    target = f"<= 1.2x ideal, 0 failed, < {4 * workers} 429s" if shared else "0 failed"
    if shared and server is None:
        return Row(workers, client, method, None, ideal, 0, 0, {}, 0, target, "SKIPPED")
    emu.reset()
    redis_url = server.url if shared and server is not None else None
    if redis_url is not None:
        redis.Redis.from_url(redis_url).flushall()
    kind = "ChatOpenAI" if client == "ChatOpenAI" else "ChatWBInference"
    ready, go, out = SPAWN.Semaphore(0), SPAWN.Event(), SPAWN.Queue()
    procs = [
        SPAWN.Process(
            target=worker,
            args=(kind, method, emu.base_url, redis_url, i, ready, go, out),
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:  # every worker has imported, built its client and warmed up
        ready.acquire(timeout=ROW_TIMEOUT)
    emu.reset()  # forget the warm-up calls
    started = time.time()
    go.set()
    reports = []
    try:
        for _ in procs:
            reports.append(out.get(timeout=ROW_TIMEOUT))
    except Exception:
        for proc in procs:
            proc.kill()
        return Row(workers, client, method, None, ideal, 0, 0, {}, 0, target, "TIMEOUT")
    for proc in procs:
        proc.join(30)
    seconds = max(ended for ended, _ in reports) - started
    errors: Counter[str] = Counter()
    for _, errs in reports:
        errors.update(errs)
    failed = sum(errors.values())
    n429 = emu.count(status=429)
    ok = failed == 0 and (not shared or (seconds <= 1.2 * ideal and n429 < 4 * workers))
    return Row(
        workers,
        client,
        method,
        seconds,
        ideal,
        n429,
        failed,
        dict(errors),
        emu.max_in_flight_seen.get(MODEL, 0),
        target,
        "PASS" if ok else "FAIL",
    )


# --- output ----------------------------------------------------------------------------------


def markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    lines = [
        "# Fleet benchmark: worker processes against one concurrency limit",
        "",
        f"Run {meta['date']} on {meta['machine']} (Python {meta['python']}; "
        f"langchain-core {meta['langchain_core']}, langchain-openai {meta['langchain_openai']}, "
        f"openai {meta['openai']}, redis-py {meta['redis_py']}, {meta['redis_server']}; "
        f"{PROMPTS} prompts per worker, emulator latency {LATENCY:g} s, limit {LIMIT} in "
        f"flight; total {meta['total_seconds']:.0f} s; 1-minute load average at start "
        f"{meta['load_average_at_start']:.1f}).",
        "",
        "Ideal = ceil(P * N / 4) * 0.2 s, timed from the start signal (every worker has "
        "imported, built its client and made one warm-up call to another model). "
        "Shared rows start from an empty Redis.",
        "",
        "| Workers | Client | Method | Wall | Wall/ideal | 429s | Failed items | "
        "Max in flight | Target | Result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        wall = "-" if r.seconds is None else f"{r.seconds:.2f} s"
        ratio = "-" if r.seconds is None else f"{r.seconds / r.ideal:.2f}x"
        failed = str(r.failed) + (f" {r.errors}" if r.errors else "")
        verdict = f"**{r.verdict}**" if r.verdict in ("FAIL", "TIMEOUT") else r.verdict
        cells = [
            str(r.workers),
            f"`{r.client}`",
            r.method,
            wall,
            ratio,
            str(r.status_429),
            failed,
            str(r.max_in_flight),
            r.target,
            verdict,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def hermetic_environment() -> None:
    """Only ever talk to 127.0.0.1, and let no W&B/OpenAI setting change the clients."""
    for name in list(os.environ):
        if name.startswith(("WANDB_", "OPENAI_")):
            del os.environ[name]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    import logging

    for name in ("langchain_wandb_inference", "openai", "httpx", "httpx2", "langchain_core"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="batch only")
    args = parser.parse_args(argv)
    hermetic_environment()
    load_at_start = os.getloadavg()[0]
    began = time.monotonic()
    methods = ("batch",) if args.quick else ("batch", "abatch")
    clients = ("ChatWBInference(redis_url=...)", "ChatWBInference()", "ChatOpenAI")
    try:
        server: RedisServer | None = RedisServer().start()
    except RedisServerMissing as exc:
        print(f"{exc}: the shared rows are skipped", file=sys.stderr)
        server = None
    rows = []
    try:
        with Emulator(api_key=API_KEY, latency=LATENCY, concurrency_limit=LIMIT) as emu:
            for workers in WORKERS:
                for method in methods:
                    for client in clients:
                        print(
                            f"[{time.monotonic() - began:5.1f}s] {workers} x {client} {method}",
                            file=sys.stderr,
                            flush=True,
                        )
                        rows.append(run_row(emu, server, workers, client, method))
    finally:
        if server is not None:
            server.kill()
    version = "redis-server (none)"
    if server is not None:
        version = os.popen(f"{server.binary} --version").read().split(" sha=")[0]
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "langchain_core": langchain_core.__version__,
        "langchain_openai": getattr(langchain_openai, "__version__", "?"),
        "openai": openai.__version__,
        "redis_py": redis.__version__,
        "redis_server": version,
        "total_seconds": time.monotonic() - began,
        "load_average_at_start": load_at_start,
    }
    table = markdown(rows, meta)
    print(table)
    (HERE / "fleet_results.md").write_text(table)
    print(f"wrote {HERE / 'fleet_results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
