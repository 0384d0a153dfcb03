"""A LangChain v1 agent (``langchain.agents.create_agent``) on a W&B Inference model.

The agent answers questions about W&B Inference's own catalog with two tools built on
the package's ``model_info``: ``cost_usd`` prices a number of tokens on a model and
``model_facts`` describes a model.  The agent loop (model -> tools -> model ...) is
LangGraph's, run by ``create_agent``; every step is printed as it happens, then the
tokens and estimated cost of the whole run.

Needs the examples extra (``pip install 'langchain-wandb-inference[examples]'``).
Run it (from the repository root)::

    python examples/agent.py                       # local emulator: no key
    WANDB_API_KEY=... python examples/agent.py     # live (WANDB_ENTITY/WANDB_PROJECT too)
    python examples/agent.py --question "Which is cheaper: 'openai/gpt-oss-20b' or ..."
"""

from __future__ import annotations

import argparse

from _target import connect
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_wandb_inference import WBModel, get_wb_inference_callback, model_info

QUESTION = "What do 2000 input and 500 output tokens on 'openai/gpt-oss-120b' cost?"


@tool
def cost_usd(model_id: str, input_tokens: int, output_tokens: int) -> str:
    """Estimated USD for tokens on a W&B Inference model, from the catalog's prices."""
    info = model_info(model_id)
    if info is None or info.price is None:
        return f"No known price for {model_id!r}."
    price = info.price
    cost = (input_tokens * price.input + output_tokens * price.output) / 1_000_000
    return f"${cost:.6f} (at ${price.input} in / ${price.output} out per 1M tokens)"


@tool
def model_facts(model_id: str) -> str:
    """Context window, reasoning mode and lifecycle stage of a W&B Inference model."""
    info = model_info(model_id)
    if info is None:
        return f"{model_id!r} is not in the catalog (it may still be served)."
    return (
        f"{info.name}: context {info.context_window} tokens, reasoning "
        f"{info.reasoning.value}, lifecycle {info.lifecycle.value}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the agent on one question, printing each step."""
    parser = argparse.ArgumentParser(description="LangChain v1 agent on W&B Inference.")
    parser.add_argument("--model", default=WBModel.GPT_OSS_120B.value)
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args(argv)

    with connect() as target, get_wb_inference_callback() as usage:
        agent = create_agent(
            target.chat(args.model),
            tools=[cost_usd, model_facts],
            system_prompt="You answer questions about W&B Inference models. Use the tools.",
        )
        print(f"Model: {args.model}\nQuestion: {args.question}\n")
        updates = agent.stream({"messages": [HumanMessage(args.question)]}, stream_mode="updates")
        for update in updates:
            for step in update.values():
                for message in (step or {}).get("messages", []):
                    if isinstance(message, ToolMessage):
                        print(f"  tool {message.name} -> {message.content}")
                    elif isinstance(message, AIMessage) and message.tool_calls:
                        for call in message.tool_calls:
                            print(f"  model calls {call['name']}({call['args']})")
                    elif isinstance(message, AIMessage):
                        print(f"Final answer: {message.text}")
    print(f"\n{usage}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
