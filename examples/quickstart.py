"""Quickstart: a LangChain chain and one tool-calling step on W&B Inference.

Shows the two things most LangChain apps do with a chat model: a
``prompt | model | parser`` chain, and one round of tool calling (the model asks for
a tool, the app runs it and sends the result back as a ``ToolMessage``), then the
tokens used and their estimated cost from ``get_wb_inference_callback``.

Run it (from the repository root)::

    python examples/quickstart.py                  # local emulator: no key, no network
    export WANDB_API_KEY=...  WANDB_ENTITY=my-team  WANDB_PROJECT=my-project
    python examples/quickstart.py                  # live W&B Inference (costs a few tokens)
"""

from __future__ import annotations

import argparse

from _target import connect
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import BaseTool, tool

from langchain_wandb_inference import WBModel, get_wb_inference_callback


@tool
def get_weather(city: str) -> str:
    """Return today's weather in a city."""
    return f"{city}: sunny, 22 °C (canned demo data, not a weather service)"


TOOLS: dict[str, BaseTool] = {t.name: t for t in [get_weather]}


def main(argv: list[str] | None = None) -> int:
    """Run the chain, then one tool call and the answer built on its result."""
    parser = argparse.ArgumentParser(description="LangChain chain and tool call on W&B.")
    parser.add_argument("--model", default=WBModel.LLAMA_3_1_8B_INSTRUCT.value)
    args = parser.parse_args(argv)

    with connect() as target, get_wb_inference_callback() as usage:
        llm = target.chat(args.model)
        print(f"Model: {args.model}\n")

        prompt = ChatPromptTemplate.from_messages(
            [("system", "Answer in one short sentence."), ("user", "{question}")]
        )
        chain = prompt | llm | StrOutputParser()
        print("Chain answer:", chain.invoke({"question": "What is W&B Inference?"}))

        # One agent step by hand: the model picks a tool, we run it, it sees the result.
        with_tools = llm.bind_tools(list(TOOLS.values()))
        messages: list[BaseMessage] = [HumanMessage("What's the weather in Tokyo today?")]
        request = with_tools.invoke(messages)
        messages.append(request)
        for call in request.tool_calls:
            print(f"Tool call: {call['name']}({call['args']})")
            result = TOOLS[call["name"]].invoke(call)  # a ToolMessage, linked by call id
            print(f"Tool result: {result.content}")
            messages.append(result)
        if request.tool_calls:
            print("Final answer:", with_tools.invoke(messages).text)
        else:
            print("The model answered without calling the tool:", request.text)

    print(
        f"\nUsage: {usage.successful_requests} requests, {usage.prompt_tokens} prompt + "
        f"{usage.completion_tokens} completion tokens; estimated cost "
        f"${usage.total_cost:.6f} (catalog prices; W&B's billing page is authoritative)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
