"""Call a LoRA adapter: your fine-tune, served by W&B Inference on its base model.

A LoRA adapter logged as a W&B artifact is called by its artifact URI in place of a
model ID, on the same endpoint: ``wandb-artifact:///<team>/<project>/<name>:<version>``.
It is billed like its base model, but the package's catalog cannot know which base
an adapter uses, so its cost is reported as unknown rather than as $0.

On the emulator a placeholder adapter is used (the emulator serves any artifact URI).
Live, there is no adapter to guess: pass ``--artifact`` or set ``WANDB_LORA_ARTIFACT``;
without one the example explains what it needs and stops before calling W&B.

Run it (from the repository root)::

    python examples/lora.py                        # local emulator, placeholder adapter
    WANDB_API_KEY=... python examples/lora.py --artifact my-team/my-project/my-lora:latest
"""

from __future__ import annotations

import argparse
import os
import re

from _target import connect

from langchain_wandb_inference import get_wb_inference_callback

SCHEME = "wandb-artifact:///"
PLACEHOLDER = SCHEME + "my-team/my-project/my-lora:latest"
_ARTIFACT = re.compile(r"[^/\s]+/[^/\s]+/[^/:\s]+:[^/\s]+")


def artifact_uri(value: str) -> str:
    """``team/project/name:version`` or the full URI -> the full URI (argparse ``type``)."""
    path = value.removeprefix(SCHEME)
    if not _ARTIFACT.fullmatch(path):
        raise argparse.ArgumentTypeError(f"expected team/project/name:version, got {value!r}")
    return SCHEME + path


def main(argv: list[str] | None = None) -> int:
    """Ask the adapter one question and report its usage."""
    parser = argparse.ArgumentParser(description="Call a LoRA adapter on W&B Inference.")
    parser.add_argument(
        "--artifact",
        type=artifact_uri,
        default=os.environ.get("WANDB_LORA_ARTIFACT"),
        help="team/project/name:version (default: $WANDB_LORA_ARTIFACT)",
    )
    parser.add_argument("--question", default="Summarise what you were fine-tuned for.")
    args = parser.parse_args(argv)
    artifact: str | None = args.artifact  # argparse applies `type` to the default too

    with connect() as target:
        if artifact is None and target.live:
            print(
                "No LoRA adapter given, so nothing was sent to W&B.\nTrain or upload one "
                "(a LoRA on a supported base such as Llama-3.1-8B-Instruct), then run:\n"
                "  python examples/lora.py --artifact <team>/<project>/<name>:<version>\n"
                "or set WANDB_LORA_ARTIFACT to that value."
            )
            return 0
        model = artifact or PLACEHOLDER
        print(f"Adapter: {model}" + ("" if artifact else " (placeholder)"))
        with get_wb_inference_callback() as usage:
            answer = target.chat(model).invoke(args.question)
        print(f"Answer: {answer.text}\n\n{usage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
