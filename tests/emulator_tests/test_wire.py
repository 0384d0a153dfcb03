"""Answers this package did not write: real llama.cpp bytes and what gateways do.

Each case is served as raw bytes from a loopback socket (``tests/rawserver.py``), on
invoke, ainvoke, stream and astream.  Bytes named ``capture(...)`` were recorded from a
real llama.cpp server (``tests/data/engines``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk

from langchain_wandb_inference import ChatWBInference, RetryPolicy
from langchain_wandb_inference.errors import (
    WBConnectionError,
    WBContextOverflowError,
    WBDeadlineExceededError,
    WBMalformedResponseError,
    WBServerError,
    WBStreamInterruptedError,
    WBTimeoutError,
)
from tests.rawserver import END, SSE_HEAD, Forever, capture, chunk, http, serving, sse

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
NOW = int(time.time())


def delta(payload: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": payload, "finish_reason": finish}
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": NOW,
            "model": MODEL,
            "choices": [choice],
        }
    )


ROLE = delta({"role": "assistant", "content": ""})
USAGE = json.dumps(
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": NOW,
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
)
GOOD_STREAM = (
    SSE_HEAD
    + sse(
        ROLE,
        delta({"content": "Hel"}),
        delta({"content": "lo"}),
        delta({}, "stop"),
        USAGE,
        "[DONE]",
    )
    + END
)
GOOD_JSON = http(
    "200 OK",
    json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "created": NOW,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    ).encode(),
)


def make(server: Any, **kwargs: Any) -> ChatWBInference:
    params: dict[str, Any] = {
        "model": MODEL,
        "api_key": "raw-key",
        "base_url": server.base_url,
        "retry": RetryPolicy(initial_delay=0.01, max_delay=0.05),
        "timeout": 5,
    }
    return ChatWBInference(**{**params, **kwargs})


def stream_text(llm: ChatWBInference) -> str:
    return "".join(c.text for c in llm.stream("hi"))


async def astream_text(llm: ChatWBInference) -> str:
    return "".join([c.text async for c in llm.astream("hi")])


PATHS: dict[str, Callable[[ChatWBInference], str]] = {
    "invoke": lambda llm: llm.invoke("hi").text,
    "ainvoke": lambda llm: asyncio.run(llm.ainvoke("hi")).text,
    "stream": stream_text,
    "astream": lambda llm: asyncio.run(astream_text(llm)),
    "invoke streaming=True": lambda llm: (
        llm.model_copy(update={"streaming": True}).invoke("hi").text
    ),
}
STREAMED = ("stream", "astream", "invoke streaming=True")


# -- streams that end before their answer does ----------------------------------------


def test_a_killed_engine_mid_stream_raises_after_the_chunks_it_sent() -> None:
    """llama.cpp SIGKILLed after 6 events: no finish_reason, no [DONE], no terminator."""
    with serving([capture("killed_sigkill_stream")], [GOOD_STREAM]) as server:
        llm = make(server)
        received: list[str] = []
        with pytest.raises(WBStreamInterruptedError) as info:
            for chunk_ in llm.stream("hi"):
                received.append(chunk_.text)
        assert "".join(received)  # what arrived stays delivered
        assert len(server.requests) == 1  # content reached the caller: not retried
        assert "Not retried: the stream failed after" in str(info.value)
        assert isinstance(info.value, WBConnectionError)


@pytest.mark.parametrize("path", ["invoke streaming=True", "ainvoke streaming=True"])
def test_a_cut_stream_behind_invoke_is_retried(path: str) -> None:
    """Nothing reached the caller of invoke: the cut stream is retried like any failure."""
    with serving([capture("killed_sigkill_stream")], [GOOD_STREAM]) as server:
        llm = make(server, streaming=True)
        message = asyncio.run(llm.ainvoke("hi")) if path.startswith("ainvoke") else llm.invoke("hi")
        assert message.text == "Hello"
        assert len(server.requests) == 2


def test_a_clean_end_without_finish_or_done_is_not_a_complete_answer() -> None:
    cut = SSE_HEAD + sse(ROLE, delta({"content": "Hel"})) + END  # terminator sent, nothing else
    with serving([cut]) as server, pytest.raises(WBStreamInterruptedError, match="after 2 event"):
        stream_text(make(server))


def test_a_tool_call_cut_mid_arguments_is_never_handed_out() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "To'},
    }
    cut = SSE_HEAD + sse(ROLE, delta({"tool_calls": [call]}))  # connection closed here
    with serving([cut]) as server:
        llm = make(server, retry=None)
        tools = llm.bind_tools([_weather])
        with pytest.raises(WBStreamInterruptedError):
            llm.model_copy(update={"streaming": True}).bind_tools([_weather]).invoke("Tokyo?")
        chunks: list[AIMessageChunk] = []
        with pytest.raises(WBStreamInterruptedError):
            for piece in tools.stream("weather in Tokyo?"):
                chunks.append(piece)  # type: ignore[arg-type]
        assert chunks  # what arrived was delivered ...
        assert all(b["type"] != "tool_call" for c in chunks for b in c.content_blocks)  # unfinished


def _weather(city: str) -> str:
    """Get the weather in a city."""
    return city


def test_role_only_chunks_are_not_content_an_error_after_them_is_retried() -> None:
    """llama.cpp's in-stream 500 comes after the role-only chunk: still retried."""
    with serving([capture("tool_format_error_stream")], [GOOD_STREAM]) as server:
        assert stream_text(make(server)) == "Hello"
        assert len(server.requests) == 2


# -- errors inside a 200 ----------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMED)
def test_an_error_event_inside_a_stream_is_typed_like_its_http_twin(path: str) -> None:
    """The real llama.cpp bytes: `data: {"error": {"code": 500, ...}}` after the 200."""
    error = capture("tool_format_error_stream")
    with serving([error]) as server:
        with pytest.raises(WBServerError) as info:
            PATHS[path](make(server))
        assert "does not match the expected peg-native format" in str(info.value)
        assert "inside the 200 answer" in str(info.value)
        assert info.value.attempts == 3  # retried like a 500: no content had arrived
        assert len(server.requests) == 3
    with serving([error], [GOOD_STREAM]) as server:
        assert PATHS[path](make(server)) == "Hello"


def test_an_error_event_hands_over_to_a_fallback_model() -> None:
    overloaded = SSE_HEAD + sse(
        ROLE,
        json.dumps(
            {
                "error": {
                    "code": 503,
                    "message": "The engine is currently overloaded, please try again later",
                    "type": "server_error",
                }
            }
        ),
    )
    with serving([overloaded], [GOOD_STREAM]) as server:
        llm = make(server, fallback_models=["meta-llama/Llama-3.3-70B-Instruct"])
        assert stream_text(llm) == "Hello"
        first, second = (json.loads(r.partition(b"\r\n\r\n")[2]) for r in server.requests)
        assert (first["model"], second["model"]) == (MODEL, "meta-llama/Llama-3.3-70B-Instruct")


def test_a_200_json_body_that_is_an_error_is_typed() -> None:
    body = json.dumps({"error": {"code": 429, "message": "Concurrency limit reached for requests"}})
    with serving([http("200 OK", body.encode())], [GOOD_JSON]) as server:
        assert make(server).invoke("hi").text == "Hello"
        assert len(server.requests) == 2


# -- malformed 200s --------------------------------------------------------------------

MALFORMED = {
    "invalid JSON": http("200 OK", b'{"choices": [{"message": '),
    "an HTML page": http("200 OK", b"<html><title>Gateway</title></html>", "text/html"),
    "choices: []": http("200 OK", b'{"id": "c", "choices": []}'),
    "message: null": http("200 OK", b'{"id": "c", "choices": [{"index": 0, "message": null}]}'),
}
MALFORMED_STREAMS = {
    "an empty stream": SSE_HEAD + END,
    "only [DONE]": SSE_HEAD + sse("[DONE]") + END,
    "a non-JSON event": SSE_HEAD + sse("hello") + END,
    "an HTML page": http("200 OK", b"<html><title>Gateway</title></html>", "text/html"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_200_is_typed_and_retried(case: str) -> None:
    with serving([MALFORMED[case]], [GOOD_JSON]) as server:
        assert make(server).invoke("hi").text == "Hello"
    with serving([MALFORMED[case]]) as server:
        with pytest.raises(WBMalformedResponseError) as info:
            make(server, retry=None).invoke("hi")
        assert info.value.body_start is not None
        assert "not an answer" in str(info.value)


@pytest.mark.parametrize("case", sorted(MALFORMED_STREAMS))
def test_malformed_200_streams_are_typed_and_retried(case: str) -> None:
    with serving([MALFORMED_STREAMS[case]], [GOOD_STREAM]) as server:
        assert stream_text(make(server)) == "Hello"
    with serving([MALFORMED_STREAMS[case]]) as server, pytest.raises(WBMalformedResponseError):
        asyncio.run(astream_text(make(server, retry=None)))


def test_sse_fields_of_the_spec_are_not_fatal() -> None:
    framed = (
        SSE_HEAD
        + chunk(
            b": keepalive\n\nevent: message\nid: 7\nretry: 1000\ndata: " + ROLE.encode() + b"\n\n"
        )
        + chunk(b"data:\n\n")  # an empty data line dispatches nothing
        + sse(delta({"content": "Hel"}), delta({"content": "lo"}), delta({}, "stop"), "[DONE]")
        + END
    )
    with serving([framed]) as server:
        assert stream_text(make(server, retry=None)) == "Hello"
    with serving([framed]) as server:
        assert asyncio.run(astream_text(make(server, retry=None))) == "Hello"


# -- time is bounded ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["invoke", "ainvoke"])
def test_a_dripping_body_is_bounded_by_the_timeout(path: str) -> None:
    """A 200 whose body drips a byte a second outlives no timeout (was: read for minutes)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    with serving([head, Forever(b" ", 0.2)]) as server:
        llm = make(server, timeout=1.0, retry=None)
        started = time.monotonic()
        with pytest.raises(WBTimeoutError) as info:
            PATHS[path](llm)
        assert time.monotonic() - started < 30  # generous: the point is that it ends
        assert "not complete 1s after the request was sent" in str(info.value)


@pytest.mark.parametrize("path", ["stream", "astream"])
def test_a_keepalive_only_stream_is_bounded_by_the_timeout(path: str) -> None:
    """llama.cpp's ping comments are bytes, not content: the gap still counts."""
    with serving([SSE_HEAD, chunk(ROLE.encode()), Forever(chunk(b":\n\n"), 0.1)]) as server:
        llm = make(server, timeout=1.0, retry=None)
        with pytest.raises(WBTimeoutError, match="No content arrived within 1s"):
            PATHS[path](llm)


class _Drip(httpx.AsyncByteStream):
    """A body that never ends, from a transport with no socket for the watchdog to shut."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.05)
            yield b" "


@pytest.mark.parametrize("stream", [False, True])
def test_without_a_socket_each_async_read_is_bounded(stream: bool) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Drip(), headers={"content-type": "application/json"})

    llm = ChatWBInference(
        model=MODEL,
        api_key="raw-key",
        timeout=0.5,
        retry=None,
        streaming=stream,
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(respond)),
    )
    with pytest.raises(WBTimeoutError):
        asyncio.run(llm.ainvoke("hi"))


def test_the_deadline_bounds_reading_too() -> None:
    slow = [
        SSE_HEAD,
        chunk(f"data: {ROLE}\n\n".encode()),
        Forever(chunk(f"data: {delta({'content': '.'})}\n\n".encode()), 0.3),
    ]
    with serving(slow) as server:
        llm = make(server, timeout=5, retry=RetryPolicy(deadline=1.5))
        started = time.monotonic()
        with pytest.raises(WBDeadlineExceededError):
            stream_text(llm)
        assert time.monotonic() - started < 30


def test_a_slow_but_progressing_answer_is_not_thrown_away() -> None:
    """The non-streamed attempt times out; the retry streams, and the tokens keep coming."""
    tokens = [chunk(f"data: {delta({'content': w})}\n\n".encode()) for w in ["one", "two", "three"]]
    progressing = [SSE_HEAD, chunk(f"data: {ROLE}\n\n".encode())]
    for token in tokens:
        progressing += [0.6, token]
    progressing += [chunk(b"data: " + delta({}, "stop").encode() + b"\n\ndata: [DONE]\n\n"), END]
    with serving([b"HTTP/1.1 200 OK\r\n", 5.0], progressing) as server:
        llm = make(server, timeout=1.0)
        assert llm.invoke("hi").text == "onetwothree"
        first, second = (json.loads(r.partition(b"\r\n\r\n")[2]) for r in server.requests)
        assert not first.get("stream") and second["stream"] is True


# -- honest messages --------------------------------------------------------------------


def test_a_refused_connection_names_the_cause_and_the_url_used() -> None:
    with serving([b""]) as server:
        url = server.base_url
    llm = ChatWBInference(api_key="k", base_url=url, retry=None)
    with pytest.raises(WBConnectionError) as info:
        llm.invoke("hi")
    text = str(info.value)
    assert url in text and "api.inference.wandb.ai" not in text
    assert "Connection refused" in text or "Errno 111" in text
    assert "etried" not in text  # retry=None: nothing is said to have been retried


def test_context_overflow_in_llamacpp_words_is_typed() -> None:
    with serving([capture("ctx_overflow")]) as server:
        with pytest.raises(WBContextOverflowError) as info:
            make(server).invoke("hi")
        assert "exceeds the available context size" in str(info.value)
        assert len(server.requests) == 1


# -- what the guard keeps -----------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in PATHS if p != "astream"])
def test_an_answer_is_freed_once_read(path: str) -> None:
    """The guard holds no answer after the call: no reference cycle, nothing in the watchdog.

    It used to keep each response (its request, headers and pool objects) until a
    garbage collection, or until the watchdog dropped its alarm ``timeout`` seconds later.
    Not ``astream``: there the SDK's and LangChain's async generators form cycles of
    their own (``ChatOpenAI``'s too).
    """
    if path in STREAMED and sys.version_info < (3, 11):
        pytest.skip(
            "Python 3.10: closing httpx's stream generators leaves GeneratorExit tracebacks "
            "in a reference cycle with the response (ChatOpenAI's too; not on 3.11+)"
        )
    responses: list[weakref.ref[Any]] = []
    body = GOOD_STREAM if path in STREAMED else GOOD_JSON
    with serving([body, body]) as server:
        llm = make(server)
        hooks = llm.root_client._client.event_hooks, llm.root_async_client._client.event_hooks

        def note(response: Any) -> None:
            responses.append(weakref.ref(response))

        async def anote(response: Any) -> None:
            note(response)

        for hook_set, hook in zip(hooks, (note, anote), strict=True):
            hook_set["response"].append(hook)
        gc.disable()
        try:
            assert PATHS[path](llm) == "Hello"
            assert responses
            assert all(ref() is None for ref in responses)
        finally:
            gc.enable()
            for hook_set, hook in zip(hooks, (note, anote), strict=True):
                hook_set["response"].remove(hook)
