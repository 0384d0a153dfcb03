"""Run the W&B Inference emulator in the foreground until Ctrl-C or SIGTERM.

``python -m langchain_wandb_inference.testing [--port N] [--api-key K] [--latency S]
[--concurrency-limit N]`` prints the base URL and the (fake) API key to point a client
at, e.g. for trying the package or a notebook without a W&B account.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

from langchain_wandb_inference.testing.emulator import Emulator


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_wandb_inference.testing",
        description="Local W&B Inference emulator (synthetic answers, 127.0.0.1 only).",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    parser.add_argument("--api-key", default="emulator-key", help="key the emulator accepts")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--concurrency-limit", type=int, default=None, help="max in flight per project and model"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emulator = Emulator(
        api_key=args.api_key,
        latency=args.latency,
        concurrency_limit=args.concurrency_limit,
        port=args.port,
    )
    with emulator:
        print("W&B Inference emulator: synthetic answers, not a real model. Ctrl-C to stop.")
        print(f"base_url: {emulator.base_url}")
        print(f"api_key:  {args.api_key}  (the emulator's fake key, not a W&B key)", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
