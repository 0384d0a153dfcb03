"""Reasoning models: the model's reasoning as its own content block, before the answer.

W&B returns a reasoning model's thinking in a separate ``reasoning`` field (``null``
for other models).  ``ChatWBInference`` keeps it, so LangChain's standard
``message.content_blocks`` lists a ``{"type": "reasoning"}`` block before the
``{"type": "text"}`` answer, whether the answer is returned whole or streamed.
W&B recommends streaming for reasoning models: a long think can outlast a
non-streaming request's timeout.

Run it (from the repository root)::

    python examples/reasoning.py                   # local emulator: no key
    WANDB_API_KEY=... python examples/reasoning.py --effort high
"""

from __future__ import annotations

import argparse

from _target import connect

from langchain_wandb_inference import WBModel

QUESTION = "A bat and a ball cost $1.10; the bat costs $1.00 more than the ball. The ball costs?"


def main(argv: list[str] | None = None) -> int:
    """Ask once whole, once streamed, printing each content block with its type."""
    parser = argparse.ArgumentParser(description="Reasoning blocks from a W&B model.")
    parser.add_argument("--model", default=WBModel.GPT_OSS_120B.value)
    parser.add_argument("--effort", choices=["low", "medium", "high"], default="low")
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args(argv)

    with connect() as target:
        llm = target.chat(args.model, reasoning_effort=args.effort)
        print(f"Model: {args.model} (reasoning effort {args.effort})\n")

        print("== invoke: message.content_blocks ==")
        message = llm.invoke(args.question)
        for block in message.content_blocks:
            if block["type"] == "reasoning":
                print(f"[reasoning] {block.get('reasoning', '')}")
            elif block["type"] == "text":
                print(f"[text] {block['text']}")
        if not any(b["type"] == "reasoning" for b in message.content_blocks):
            print("(no reasoning block: this backend or model returned none)")

        print("\n== stream: blocks as they arrive ==")
        current = None
        for chunk in llm.stream(args.question):
            for block in chunk.content_blocks:
                kind = block["type"]
                if kind not in ("reasoning", "text"):
                    continue
                if kind != current:  # a header each time the stream switches block type
                    print(f"\n[{kind}] ", end="")
                    current = kind
                print(block.get(kind, ""), end="", flush=True)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
