"""Every fault at the byte level, over a raw socket, against the real bytes it imitates.

No HTTP client here (ours or anyone's): a client would hide the framing these faults are
about.  Where a real engine's capture exists (``tests/data/engines/llamacpp/``), the
emulator's bytes are compared with it; elsewhere with the source the fault cites.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from langchain_wandb_inference.testing import Emulator, Fault

pytestmark = pytest.mark.emulator

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
CAPTURES = Path(__file__).parents[1] / "data" / "engines" / "llamacpp"
TERMINATOR = b"0\r\n\r\n"


def capture(name: str) -> tuple[bytes, bytes]:
    """A real llama.cpp answer as received: (head, body with its chunked framing)."""
    head, _, body = (CAPTURES / f"{name}.response.bin").read_bytes().partition(b"\r\n\r\n")
    return head, body


@dataclass
class Raw:
    """One answer read off the socket until the server closed it."""

    head: bytes
    body: bytes

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        for line in self.head.decode().split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.lower() == name.lower():
                return value.strip()
        return None


@pytest.fixture(scope="module")
def module_emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emu(module_emu: Emulator) -> Emulator:
    module_emu.reset()
    return module_emu


def connect(emu: Emulator, *, stream: bool, close: bool = True) -> socket.socket:
    """Send a chat request on a fresh connection; ``close`` asks for ``Connection: close``."""
    port = int(emu.base_url.rsplit(":", 1)[1].split("/")[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)  # a failsafe, not a measure
    body = json.dumps(
        {
            "model": LLAMA,
            "messages": [{"role": "user", "content": "Say hello"}],
            "stream": stream,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer emulator-key\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def drain(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (EOF, not a reset)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


def read_all(sock: socket.socket) -> Raw:
    head, _, body = drain(sock).partition(b"\r\n\r\n")
    return Raw(head, body)


def fetch(emu: Emulator, fault: Fault | None, *, stream: bool, close: bool = True) -> Raw:
    if fault is not None:
        emu.script(LLAMA, fault)
    return read_all(connect(emu, stream=stream, close=close))


def chunks(body: bytes) -> tuple[list[bytes], bool, bytes]:
    """HTTP/1.1 chunks of ``body``: (payloads, terminator seen, bytes left over)."""
    payloads: list[bytes] = []
    rest = body
    while rest:
        size_line, sep, after = rest.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            return payloads, after == b"\r\n", b""
        if len(after) < size + 2:
            break
        payloads.append(after[:size])
        rest = after[size + 2 :]
    return payloads, False, rest


def data_events(body: bytes) -> list[str]:
    """The ``data:`` payloads of a plainly framed SSE body."""
    text = b"".join(chunks(body)[0]).decode()
    return [e[len("data: ") :] for e in text.split("\n\n") if e.startswith("data: ")]


def spec_events(text: str) -> list[dict[str, Any]]:
    """Events as the WHATWG SSE parsing algorithm dispatches them (type, data, last id)."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    kind, last_id = "", ""
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:
                events.append({"type": kind or "message", "data": "\n".join(data), "id": last_id})
            data, kind = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            kind = value
        elif field == "id" and "\0" not in value:
            last_id = value
    return events


def test_spec_parser_can_fail() -> None:
    """The parser below decides sse_framing's test: it must see what framing changes."""
    assert spec_events("event: other\ndata: x\n\n")[0]["type"] == "other"
    assert spec_events("data:\n\n") == [{"type": "message", "data": "", "id": ""}]
    assert spec_events("retry: 1\n\nid: 7\n\n: c\n\n") == []


# --- errors inside a 200 stream --------------------------------------------------------------


def test_stream_error_is_llamacpps_exact_bytes(emu: Emulator) -> None:
    answer = fetch(emu, Fault.stream_error(), stream=True)
    _real_head, real_body = capture("tool_format_error_stream")
    ours, real = chunks(answer.body), chunks(real_body)
    assert answer.status == 200
    assert ours[1:] == real[1:] == (True, b"")  # the same clean terminator, nothing after
    assert ours[0][1:] == real[0][1:]  # the error event, byte for byte
    assert ours[0][1] == (
        b'data: {"error":{"code":500,"message":"The model produced output that does not '
        b'match the expected peg-native format","type":"server_error"}}\n\n'
    )
    for first in (ours[0][0], real[0][0]):  # both start with a role-only chunk
        (choice,) = json.loads(first.decode().removeprefix("data: "))["choices"]
        assert set(choice["delta"]) == {"role", "content"} and not choice["delta"]["content"]
        assert choice["finish_reason"] is None
    assert b"[DONE]" not in answer.body


def test_tool_format_error_non_streamed_is_llamacpps_500(emu: Emulator) -> None:
    answer = fetch(emu, Fault.stream_error(), stream=False)
    assert answer.status == 500
    assert answer.body == capture("tool_format_error")[1]


@pytest.mark.parametrize("error", [Fault.overloaded(), Fault.concurrency(), Fault.server_error()])
def test_stream_error_carries_a_wb_error(emu: Emulator, error: Fault) -> None:
    streamed = fetch(emu, Fault.stream_error(error), stream=True)
    events = data_events(streamed.body)
    assert streamed.status == 200
    assert len(events) == 2
    assert json.loads(events[1]) == json.loads(error.render(LLAMA))
    assert chunks(streamed.body)[1]
    whole = fetch(emu, Fault.stream_error(error), stream=False)
    assert (whole.status, whole.body) == (error.status, error.render(LLAMA))


def test_stream_error_takes_only_an_error() -> None:
    with pytest.raises(ValueError, match="error fault"):
        Fault.stream_error(Fault.delay(1))


# --- truncation --------------------------------------------------------------------------------


def test_stream_cut_ends_like_a_killed_llamacpp(emu: Emulator) -> None:
    """SIGKILL after 6 events: a chunk boundary, no terminator, no finish, no [DONE], FIN."""
    answer = fetch(emu, Fault.stream_cut(6), stream=True, close=False)  # it closes by itself
    real = capture("killed_sigkill_stream")[1]
    for body in (answer.body, real):
        _payloads, terminated, rest = chunks(body)
        assert not terminated and rest == b""
        assert body.endswith(b"\n\n\r\n")
        assert len(data_events(body)) == 6
        assert b"[DONE]" not in body
        assert all(json.loads(e)["choices"][0]["finish_reason"] is None for e in data_events(body))


def test_stream_cut_before_the_first_event_is_a_bare_head(emu: Emulator) -> None:
    answer = fetch(emu, Fault.stream_cut(0), stream=True, close=False)
    assert answer.status == 200
    assert answer.body == capture("killed_sigkill_before_first_token_stream")[1] == b""


def test_stream_cut_never_sends_the_finish(emu: Emulator) -> None:
    answer = fetch(emu, Fault.stream_cut(10_000), stream=True, close=False)
    events = data_events(answer.body)
    assert events and all(json.loads(e)["choices"][0]["finish_reason"] is None for e in events)


def test_clean_truncation_ends_the_body_but_not_the_answer(emu: Emulator) -> None:
    answer = fetch(emu, Fault.stream_cut(3, clean=True), stream=True)
    _payloads, terminated, rest = chunks(answer.body)
    assert terminated and rest == b""
    assert len(data_events(answer.body)) == 3
    assert b"[DONE]" not in answer.body and b'"finish_reason": "' not in answer.body


def test_clean_truncation_non_streamed_is_a_complete_message_of_invalid_json(
    emu: Emulator,
) -> None:
    answer = fetch(emu, Fault.stream_cut(3, clean=True), stream=False)
    assert int(answer.header("content-length") or -1) == len(answer.body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.body)


# --- slow drip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_drip_sends_a_few_bytes_then_waits(stream: bool) -> None:
    with Emulator() as emulator:
        emulator.script(LLAMA, Fault.drip(size=8, interval=60))
        sock = connect(emulator, stream=stream)
        first = sock.recv(65536)  # only the first write exists: the next is 60 s away
        emulator.stop()  # ends the wait: nothing more is written
        rest = drain(sock)
    assert first == b"HTTP/1.1"
    assert rest == b""


@pytest.mark.parametrize("stream", [False, True])
def test_drip_delivers_the_whole_answer(emu: Emulator, stream: bool) -> None:
    answer = fetch(emu, Fault.drip(size=3, interval=0), stream=stream)
    assert answer.status == 200
    if stream:
        assert chunks(answer.body)[1]
        assert data_events(answer.body)[-1] == "[DONE]"
    else:
        assert json.loads(answer.body)["choices"][0]["message"]["content"]


@pytest.mark.parametrize(("size", "interval"), [(0, 1.0), (1, -1.0)])
def test_drip_refuses_nonsense(size: int, interval: float) -> None:
    with pytest.raises(ValueError):
        Fault.drip(size=size, interval=interval)


# --- keep-alive only ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comment", "expected"),
    [(":", b"3\r\n:\n\n\r\n"), (": keepalive", b"d\r\n: keepalive\n\n\r\n")],
)
def test_keepalive_sends_only_comments_until_the_emulator_stops(
    comment: Any, expected: bytes
) -> None:
    with Emulator() as emulator:
        emulator.script(LLAMA, Fault.keepalive(comment=comment, interval=0.01))
        sock = connect(emulator, stream=True)
        received = b""
        while received.count(expected) < 3:
            received += sock.recv(65536)
        emulator.stop()
        received += drain(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"200 OK" in head and b"text/event-stream" in head
    assert body.replace(expected, b"") == b""  # nothing but comments, each its own chunk


def test_keepalive_ping_is_llamacpps() -> None:
    assert capture("sse_ping_stream")[1].startswith(b"3\r\n:\n\n\r\n" * 5)


# --- malformed 200s ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_json_is_a_complete_message_that_does_not_parse(
    emu: Emulator, stream: bool
) -> None:
    answer = fetch(emu, Fault.invalid_json(), stream=stream)
    assert answer.status == 200
    assert answer.header("content-type") == "application/json"
    assert int(answer.header("content-length") or -1) == len(answer.body) > 0
    assert answer.body.startswith(b'{"id": "chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.body)


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("status", "starts", "ends"),
    [
        (502, NGINX_502, NGINX_502),
        (504, b"<html>\r\n<head><title>504 Gateway Time-out</title>", b"</html>\r\n"),
        (
            200,
            b"<!DOCTYPE html>\n<html>\n<head>\n<title>Error</title>\n",
            b"nginx.</em></p>\n</body>\n</html>\n",
        ),
    ],
)
def test_proxy_html_is_nginxs_page(emu: Emulator, status: int, starts: bytes, ends: bytes) -> None:
    for stream in (False, True):
        answer = fetch(emu, Fault.proxy_html(status), stream=stream)
        assert answer.status == status
        assert answer.header("content-type") == "text/html"
        assert answer.body.startswith(starts) and answer.body.endswith(ends)


def test_no_choices_and_null_message_keep_the_rest_of_the_answer(emu: Emulator) -> None:
    empty = json.loads(fetch(emu, Fault.no_choices(), stream=True).body)
    assert empty["choices"] == [] and empty["object"] == "chat.completion"
    assert empty["usage"]["completion_tokens"] > 0
    null = json.loads(fetch(emu, Fault.null_message(), stream=False).body)
    (choice,) = null["choices"]
    assert choice["message"] is None and choice["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_empty_stream_is_a_head_and_a_terminator(emu: Emulator, stream: bool) -> None:
    answer = fetch(emu, Fault.empty_stream(), stream=stream)
    assert answer.status == 200
    assert str(answer.header("content-type")).startswith("text/event-stream")
    assert answer.body == TERMINATOR


def test_only_done_is_llamacpps_last_two_chunks(emu: Emulator) -> None:
    answer = fetch(emu, Fault.only_done(), stream=True)
    real = capture("chat_basic_stream")[1]
    assert answer.body == b"e\r\ndata: [DONE]\n\n\r\n" + TERMINATOR
    assert real.endswith(answer.body)


# --- unusual SSE framing -----------------------------------------------------------------------


def test_unusual_framing_is_the_normal_answer_to_a_spec_compliant_parser(emu: Emulator) -> None:
    def content(body: bytes, events: list[str]) -> list[Any]:
        parsed = [json.loads(e) for e in events if e != "[DONE]"]
        return [(p.get("choices"), p.get("usage")) for p in parsed]

    normal = fetch(emu, None, stream=True)
    framed = fetch(emu, Fault.sse_framing(), stream=True)
    payloads, terminated, _ = chunks(framed.body)
    text = b"".join(payloads).decode()
    events = spec_events(text)
    assert terminated
    assert {e["type"] for e in events} == {"message"}
    assert [e["id"] for e in events] == [str(n) for n in range(1, len(events) + 1)]
    assert events[-1]["data"] == "[DONE]"
    assert content(framed.body, [e["data"] for e in events]) == content(
        normal.body, data_events(normal.body)
    )
    for line in ("retry: 3000\n\n", ": keepalive\n\n", "event: message\n", "\ndata:\n\n"):
        assert line in text


# --- context overflow --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_llamacpp_overflow_is_the_captured_body(emu: Emulator, stream: bool) -> None:
    """Streamed or not: a plain JSON 400 before any streaming (ctx_overflow_stream)."""
    answer = fetch(emu, Fault.context_overflow("llamacpp"), stream=stream)
    assert answer.status == 400
    assert answer.body == capture("ctx_overflow")[1] == capture("ctx_overflow_stream")[1]


@pytest.mark.parametrize(
    ("engine", "status", "body"),
    [
        (
            "vllm",
            400,
            '{"object":"error","message":"This model\'s maximum context length is 512 tokens. '
            "However, you requested 730 tokens (630 in the messages, 100 in the completion). "
            'Please reduce the length of the messages or completion.","type":"BadRequestError",'
            '"param":null,"code":400}',
        ),
        (
            "sglang",
            400,
            '{"object":"error","message":"The input (630 tokens) is longer than the model\'s '
            'context length (512 tokens).","type":"BadRequestError","param":null,"code":400}',
        ),
        (
            "tgi",
            422,
            '{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 512. '
            'Given: 630 `inputs` tokens and 100 `max_new_tokens`","error_type":"validation"}',
        ),
    ],
)
def test_engine_overflow_wordings(emu: Emulator, engine: Any, status: int, body: str) -> None:
    answer = fetch(emu, Fault.context_overflow(engine), stream=True)
    assert (answer.status, answer.body.decode()) == (status, body)
