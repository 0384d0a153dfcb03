"""The probe's reading of the service's bytes: the contract's phrase for the documented
shape, a different phrase for each way of differing (so a difference cannot read as ok)."""

from __future__ import annotations

import pytest

from langchain_wandb_inference.testing.probe import read
from langchain_wandb_inference.testing.probe.assumptions import ASSUMPTIONS, BY_NAME, DIFFERS, OK
from langchain_wandb_inference.testing.probe.steps import STEPS
from langchain_wandb_inference.testing.probe.wire import shape, sse_lines

ROLE = {"role": "assistant", "content": ""}
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_every_assumption_is_observed_by_exactly_one_step() -> None:
    observed = [name for step in STEPS for name in step.observes]
    assert sorted(observed) == sorted(a.name for a in ASSUMPTIONS)


def test_each_assumption_names_its_contract_source_and_code() -> None:
    for a in ASSUMPTIONS:
        assert a.expected and a.source and a.emulator and a.package, a.name
        assert a.judge(a.expected[0]) == OK and a.judge("something else") == DIFFERS


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (
            [{"choices": [{"delta": ROLE}]}, {"choices": [], "usage": USAGE}],
            "final chunk with choices [] and usage",
        ),
        ([{"choices": [{"delta": ROLE}]}], "no usage chunk"),
        ([{"choices": [{"delta": ROLE}], "usage": USAGE}], "usage on a chunk with choices"),
        ([{"choices": [], "usage": USAGE}, {"choices": [{"delta": {}}]}], "usage chunk not last"),
    ],
)
def test_usage_place(chunks: list[dict[str, object]], expected: str) -> None:
    assert read.usage_place(chunks) == expected


def test_first_chunk_and_reasoning_deltas() -> None:
    assert read.first_chunk([ROLE, {"content": "Hi"}]) == "role only"
    assert read.first_chunk([{"role": "assistant", "content": "Hi"}]) == "carries content"
    assert read.first_chunk([]) == "no chunks"
    assert read.reasoning_deltas([ROLE, {"reasoning": "x"}]) == "delta.reasoning"
    assert read.reasoning_deltas([{"reasoning_content": "x"}]) == "delta.reasoning_content"
    assert read.reasoning_deltas([ROLE]) == "no reasoning deltas"


def test_reasoning_fields() -> None:
    assert read.reasoning_field({"reasoning": "why"}) == "message.reasoning"
    assert (
        read.reasoning_field({"reasoning_content": "why", "reasoning": None})
        == "message.reasoning_content"
    )
    assert read.plain_reasoning({"content": "x", "reasoning": None}) == "message.reasoning: null"
    assert read.plain_reasoning({"content": "x"}) == "no reasoning field"
    assert read.plain_reasoning({"reasoning": "why"}) == "reasoning text present"


def test_framing_and_end() -> None:
    body = b": keepalive\n\nevent: message\ndata: {}\n\ndata: [DONE]\n\n"
    kinds = [kind for kind, _ in sse_lines(body)]
    assert kinds == ["comment", "event", "data", "data"]
    assert read.framing(kinds) == "data: and comment, event"
    assert read.framing(["data", "data"]) == "data: lines only"
    assert read.stream_end(["{}", "[DONE]"]) == "data: [DONE]"
    assert read.stream_end(["{}"]) == "no [DONE]"


def test_tool_calls() -> None:
    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": 1}'},
    }
    assert read.tool_shape([call], "f") == "OpenAI shape"
    assert read.tool_shape([{**call, "function": {"name": "f", "arguments": {"a": 1}}}], "f") == (
        "arguments are not JSON object text"
    )
    assert read.tool_shape([], "f") == "no tool_calls"
    assert read.id_style("call_abc123", "<11 characters>") == "call_…"
    assert read.id_style("chatcmpl-tool-9f8e", "<18 characters>") == "chatcmpl-tool-…"
    assert read.id_style("a1b2c3", "<6 hex>") == "<6 hex> (no prefix)"
    head = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
    piece = {"index": 0, "function": {"arguments": '{"a"'}}
    assert read.fragments([head, piece, piece]) == "id and name first, arguments in fragments"
    assert (
        read.fragments([{**head, "function": {"name": "f", "arguments": "{}"}}])
        == "arguments in one piece"
    )
    assert read.fragments([piece, head]) == "id or name not in the first delta"


def test_shapes_and_listing() -> None:
    body = {
        "object": "list",
        "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "s", "root": "m"}],
    }
    assert read.models_shape(body) == "as documented"
    body["data"][0]["max_model_len"] = 8192
    assert read.models_shape(body) == "entries carry max_model_len"
    answer = {
        "object": "chat.completion",
        "choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}],
    }
    assert read.chat_shape(answer, USAGE) == "as documented"
    assert (
        read.chat_shape(answer, {})
        == "usage lacks prompt_tokens; usage lacks completion_tokens; usage lacks total_tokens"
    )
    assert (
        read.json_answer('{"answer": "Paris"}', frozenset({"answer"})) == "JSON matching the schema"
    )
    assert (
        read.json_answer('{"answer": 1}', frozenset({"answer"})) == "JSON not matching the schema"
    )
    assert read.json_answer("Paris", None) == "not JSON"
    assert read.logprobs({"content": []}) == "logprobs returned"
    assert read.logprobs(None) == "logprobs: null"
    assert read.not_in_catalog(["acme/new", "meta-llama/Llama-3.1-8B-Instruct"]) == "acme/new"


def test_a_header_shape_never_holds_the_value() -> None:
    for value, expected in [
        ("3f2b8c1e-1d2a-4b3c-9d8e-7f6a5b4c3d2e", "<uuid>"),
        ("12", "<integer>"),
        ("0.5", "<number>"),
        ("deadbeef", "<8 hex>"),
        ("Mon, 01 Dec 2026 10:00:00 GMT", "<http-date>"),
        ("team-secret-value", "<17 characters>"),
    ]:
        assert shape(value) == expected
        assert value not in shape(value)


def test_scopes_follow_the_catalog() -> None:
    assert BY_NAME["reasoning.field"].applies_to(None) is False  # unknown: not a reasoning model
    assert BY_NAME["reasoning.plain_model"].applies_to(None) is True
    assert BY_NAME["auth.bad_key"].applies_to(None) is False  # service-wide, not per model
