"""A small evaluation spread over worker processes that share one W&B limit (fleet mode).

W&B limits requests *in flight* per project, user and model, across all of a team's
processes.  Here four worker processes each answer a slice of a QA set through
``ChatWBInference(redis_url=...)``: they share one concurrency limit, one circuit per
model and one budget (``Budget(..., name=...)``) through Redis, so the fleet sends
about as many requests at once as the service accepts.

Redis: ``WANDB_INFERENCE_REDIS_URL`` if set, else a throw-away ``redis-server`` on
127.0.0.1 started for the run (the example says which, and skips with a hint when
there is neither).  Without ``WANDB_API_KEY`` the answers come from the local emulator,
with W&B's concurrency limit (4 in flight here) and 0.2 s per answer.  From the
repository root::

    python examples/fleet.py
    WANDB_API_KEY=... WANDB_INFERENCE_REDIS_URL=redis://host:6379/0 python examples/fleet.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from _target import connect

from langchain_wandb_inference import Budget, ChatWBInference, get_wb_inference_callback
from langchain_wandb_inference.testing.redis_server import RedisServer, RedisServerMissing

WORKERS = 4
QUESTIONS = [f"What is {a} + {b}? Answer with the number only." for a in range(12) for b in (3, 7)]
LIMIT = 4  # the emulator's concurrency limit (W&B publishes none)
LATENCY = 0.2  # seconds per emulated answer
BUDGET_USD = 0.05
BUDGET_NAME = "fleet-example"


def worker(
    index: int, questions: list[str], settings: dict[str, Any], redis_url: str, out: Any
) -> None:
    """Answer ``questions`` (one worker process): the fleet shares limit and budget."""
    llm = ChatWBInference(
        redis_url=redis_url, budget=Budget(BUDGET_USD, name=BUDGET_NAME), **settings
    )
    with get_wb_inference_callback() as usage:
        answers = llm.batch(questions, return_exceptions=True)
    failed = [type(a).__name__ for a in answers if isinstance(a, BaseException)]
    first = next((a.text for a in answers if not isinstance(a, BaseException)), "")
    out.put((index, len(answers) - len(failed), failed, usage.total_cost, first))


@contextmanager
def redis_for_the_run() -> Iterator[str | None]:
    """The Redis to share: the configured one, or a local server for this run (or none)."""
    configured = os.environ.get("WANDB_INFERENCE_REDIS_URL")
    if configured:
        print("Coordination: the Redis in WANDB_INFERENCE_REDIS_URL", flush=True)
        yield configured
        return
    try:
        server = RedisServer()
    except RedisServerMissing as missing:
        print(f"Fleet mode needs Redis, and there is none: {missing}.", flush=True)
        print("Set WANDB_INFERENCE_REDIS_URL, or install redis-server. Skipping.", flush=True)
        yield None
        return
    with server:
        print(
            f"Coordination: a local redis-server on 127.0.0.1:{server.port}, started for "
            "this run (set WANDB_INFERENCE_REDIS_URL to use yours)",
            flush=True,
        )
        yield server.url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args(argv)
    with connect(latency=LATENCY, concurrency_limit=LIMIT) as target, redis_for_the_run() as url:
        if url is None:
            return 0
        slices = [QUESTIONS[i :: args.workers] for i in range(args.workers)]
        spawn = mp.get_context("spawn")  # fresh interpreters, as separate machines would be
        out = spawn.Queue()
        procs = [
            spawn.Process(target=worker, args=(i, part, target.settings, url, out))
            for i, part in enumerate(slices)
        ]
        started = time.monotonic()
        for proc in procs:
            proc.start()
        reports = sorted(out.get(timeout=300) for _ in procs)
        for proc in procs:
            proc.join()
        seconds = time.monotonic() - started
    answered = sum(r[1] for r in reports)
    for index, ok, failed, spent, first in reports:
        errors = f" {failed}" if failed else ""
        print(f"worker {index}: {ok} answered, {len(failed)} failed{errors}, ${spent:.6f}")
        print(f"  first answer: {first[:72]}")
    cost = sum(r[3] for r in reports)
    print(
        f"{answered} of {len(QUESTIONS)} questions answered by {args.workers} worker processes "
        f"in {seconds:.1f} s (including their start-up); estimated cost ${cost:.6f} "
        f"of the shared ${BUDGET_USD:.2f} budget '{BUDGET_NAME}'"
    )
    if target.emulator is not None:
        emulator = target.emulator
        print(
            f"Emulator: limit {LIMIT} in flight, {LATENCY:g} s per answer; most in flight at "
            f"once: {max(emulator.max_in_flight_seen.values(), default=0)}; concurrency 429s "
            f"answered: {emulator.count(status=429)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
