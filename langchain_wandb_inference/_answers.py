"""How W&B's answers become LangChain messages: reasoning, content blocks, usage.

Kept apart from the chat model class so that each piece says what W&B adds or fixes:
its ``reasoning`` field, a content-block translator for ``model_provider="wandb"``
(refusals and tool calls as ChatOpenAI's, reasoning first), usage that cannot crash an
answer, usage estimated for answers that reported none, and structured output through
function calling when a model refuses ``response_format``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import openai
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages import content as types
from langchain_core.messages.block_translators import openai as openai_blocks
from langchain_core.messages.block_translators import register_translator
from langchain_core.outputs import ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_wandb_inference.policies._pipeline import Call
from langchain_wandb_inference.usage import clean_usage, rough_tokens

logger = logging.getLogger("langchain_wandb_inference")


def prompt_tokens(messages: Sequence[BaseMessage]) -> int:
    """A cheap prompt-size estimate, text only (an image's base64 bytes are not tokens)."""
    return sum(rough_tokens(m.text) for m in messages)


def function_calling_instead(
    kwargs: Mapping[str, Any], exc: openai.APIStatusError, model: str
) -> dict[str, Any] | None:
    """The same request with the schema as a forced function, if W&B refused json_schema.

    Some models lack ``response_format`` (W&B answers 400/422 naming it); function
    calling carries the same schema.  ``None`` when that is not what happened.
    """
    response_format = kwargs.get("response_format")
    if response_format is None or exc.status_code not in (400, 422):
        return None
    if "response_format" not in f"{exc.message} {exc.body}":
        return None
    if isinstance(response_format, dict):
        if response_format.get("type") != "json_schema":
            return None  # json_object has no schema to carry over
        schema = response_format["json_schema"]
        function = {"name": schema["name"], "parameters": schema.get("schema", {})}
    else:  # a Pydantic class or TypedDict, as with_structured_output binds it
        function = dict(convert_to_openai_tool(response_format)["function"])
    name = function["name"]
    logger.warning(
        "W&B Inference: %s refused response_format json_schema (HTTP %s); "
        "retrying once with function calling",
        model,
        exc.status_code,
    )
    instead = {k: v for k, v in kwargs.items() if k not in ("response_format", "strict")}
    instead["tools"] = [{"type": "function", "function": function}]
    instead["tool_choice"] = {"type": "function", "function": {"name": name}}
    return instead


def as_json_schema_answer(result: ChatResult) -> ChatResult:
    """Present a forced function call as the JSON answer ``json_schema`` parsers expect."""
    for generation in result.generations:
        message = generation.message
        if isinstance(message, AIMessage) and message.tool_calls:
            args = message.tool_calls[0]["args"]
            message.content = json.dumps(args)
            message.additional_kwargs["parsed"] = args
            message.tool_calls = []
            message.additional_kwargs.pop("tool_calls", None)
    return result


def attach_reasoning(message: BaseMessage, wire: Any) -> None:
    """Copy W&B's ``reasoning`` (or legacy ``reasoning_content``) where LangChain reads it.

    ``additional_kwargs["reasoning_content"]`` is what ``content_blocks`` turns into a
    ``reasoning`` block placed before the text.
    """
    if not wire:
        return
    if isinstance(wire, Mapping):
        reasoning = wire.get("reasoning") or wire.get("reasoning_content")
    else:  # the SDK's parsed message keeps W&B's extra fields as attributes
        reasoning = getattr(wire, "reasoning", None) or getattr(wire, "reasoning_content", None)
    if isinstance(reasoning, str) and reasoning:
        message.additional_kwargs["reasoning_content"] = reasoning


def _with_reasoning(
    translate: Callable[[Any], list[types.ContentBlock]],
) -> Callable[[Any], list[types.ContentBlock]]:
    """OpenAI's Chat Completions translator, with the message's reasoning block first."""

    def translated(message: Any) -> list[types.ContentBlock]:
        blocks = translate(message)
        reasoning = message.additional_kwargs.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            block = {"type": "reasoning", "reasoning": reasoning}  # as core's own, no id
            return [cast("types.ReasoningContentBlock", block), *blocks]
        return blocks

    return translated


# ``content_blocks`` of messages with model_provider="wandb": as ChatOpenAI's (refusals,
# tool calls, unfinished tool-call chunks), plus W&B's reasoning.
register_translator(
    "wandb",
    _with_reasoning(openai_blocks.translate_content),
    _with_reasoning(openai_blocks.translate_content_chunk),
)


def clean_response_usage(response: Any) -> None:
    """Drop usage fields that are not non-negative integers, before LangChain reads them."""
    if isinstance(response, dict):
        if isinstance(response.get("usage"), Mapping):
            response["usage"] = clean_usage(response["usage"])
        return
    usage = getattr(response, "usage", None)
    if usage is not None and hasattr(usage, "model_dump"):
        dumped = usage.model_dump()
        if (cleaned := clean_usage(dumped)) != dumped:
            response.usage = type(usage).model_construct(**cleaned)


def answer_usage(
    result: ChatResult, call: Call, messages: Sequence[BaseMessage]
) -> tuple[str, Mapping[str, Any]]:
    """Which model answered, and its usage (estimated when it reported none)."""
    message = result.generations[0].message if result.generations else None
    model = str((result.llm_output or {}).get("model_name") or call.model)
    usage = getattr(message, "usage_metadata", None)
    if usage:
        return model, usage
    return model, estimated_usage(messages, message.text if message is not None else "")


def estimated_usage(messages: Sequence[BaseMessage], output: str) -> dict[str, Any]:
    """Usage for an answer that reported none: the prompt and what arrived, 4 chars a token."""
    prompt, produced = prompt_tokens(messages), rough_tokens(output)
    return {"input_tokens": prompt, "output_tokens": produced, "total_tokens": prompt + produced}
