"""What a 200 must be to count as an answer, and how long it may take.

The ``openai`` SDK's typing stops at the status line: a 200 whose body is HTML, empty,
or ``choices: []`` raises a bare ``JSONDecodeError``/``IndexError`` somewhere in the
parsing; an error event inside a 200 stream escapes as a bare ``openai.APIError``; a
stream cut before its end is returned as a complete answer; valid SSE fields
(``event:``, ``id:``, ``retry:``, empty ``data:``) crash its parser; and httpx's timeouts
bound each read, not the answer, so a body that drips (or a stream of keepalive
comments) is read forever.  This module guards the bytes of every chat-completions
answer ``ChatWBInference`` asks for, below the SDK, as an httpx response hook:

* **SSE per the spec**: comments, ``event:``, ``id:``, ``retry:`` and empty ``data:``
  lines are consumed here; the SDK sees only ``data: <json>`` events and ``[DONE]``.
* **Errors inside a 200** (a stream event, or a JSON body, ``{"error": {...}}``) are
  raised typed exactly as their HTTP twin (``errors.from_error_body``).
* **Integrity**: a stream that ends without ``finish_reason`` and without ``[DONE]``
  raises ``WBStreamInterruptedError`` (how many events arrived); a 200 that is not an
  answer raises ``WBMalformedResponseError`` with the start of its body.
* **Time**: for a non-streamed answer, ``timeout`` bounds the whole response from the
  moment it was sent; for a stream, the wait for the first content and the longest gap
  between content events (keepalive comments are not content).  The call's deadline
  (``RetryPolicy.deadline``) bounds everything, reading included.  A watchdog thread
  shuts the answer's socket down when time is up (a blocked read returns at once), on
  threads and event loops alike; an async transport that exposes no socket is read
  under an ``asyncio`` timeout per chunk instead.

Only requests made while a chat model set :data:`EXPECT` are guarded; the hook leaves
every other request of a shared client alone.  Chat requests ask for an uncompressed
answer (``Accept-Encoding: identity``) so that the guard reads the bytes as sent; a
server that compresses anyway is only timed, not parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import importlib
import inspect
import itertools
import json
import os
import socket
import sys
import threading
import time
import weakref
from asyncio.trsock import TransportSocket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_wandb_inference.errors import (
    WBDeadlineExceededError,
    WBInferenceError,
    WBMalformedResponseError,
    WBStreamInterruptedError,
    WBTimeoutError,
    from_error_body,
)


@dataclass(frozen=True)
class Expect:
    """What the chat model expects of the answer to the request it is about to send."""

    stream: bool
    model: str
    project: str | None
    deadline: float | None
    """``time.monotonic()`` by which the whole call must end (``None``: no deadline)."""


E = TypeVar("E", bound=WBInferenceError)
T = TypeVar("T")
EXPECT: ContextVar[Expect | None] = ContextVar("wb_inference_expect", default=None)
HEADERS = {"Accept-Encoding": "identity"}
"""Sent with every request: the guard reads an answer's bytes as the server sent them."""
_BODY_START = 300


# --------------------------------------------------------------------------------------
# Installing the hooks
# --------------------------------------------------------------------------------------


def guard(client: Any) -> Any:
    """Add the guard's hooks to an httpx (or httpx2) client, once; returns the client."""
    hooks = client.event_hooks
    asynchronous = inspect.iscoroutinefunction(client.send)
    request_hook, response_hook = (_stamp_async, _wrap_async) if asynchronous else (_stamp, _wrap)
    if request_hook not in hooks["request"]:
        client.event_hooks = {
            "request": [*hooks["request"], request_hook],
            "response": [*hooks["response"], response_hook],
        }
    return client


def _stamp(request: Any) -> None:
    """Note when a guarded request left, and what is expected of its answer."""
    expect = EXPECT.get()
    if expect is not None and request.url.path.endswith("/chat/completions"):
        request.extensions = {**request.extensions, "wb_expect": (expect, time.monotonic())}


async def _stamp_async(request: Any) -> None:
    _stamp(request)


def _wrap(response: Any, asynchronous: bool = False) -> None:
    """Guard a 200 answer to a stamped request (the body is not read yet)."""
    stamped = response.request.extensions.get("wb_expect")
    if stamped is None or response.status_code != 200:
        return
    expect, started = stamped
    read = (response.request.extensions.get("timeout") or {}).get("read")
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    checker = _Checker(expect, response, started, read, parse=not encoded)
    sync, async_ = _stream_classes(type(response).__module__.split(".")[0])
    guarded = async_ if asynchronous else sync
    response.stream = guarded(response.stream, checker, _socket_of(response))


async def _wrap_async(response: Any) -> None:
    _wrap(response, asynchronous=True)


def _socket_of(response: Any) -> socket.socket | TransportSocket | None:
    """The answer's socket, for the watchdog to shut when the answer is late.

    A plain socket under threads; asyncio's ``TransportSocket`` wrapper on an event loop
    (its ``shutdown`` reaches the socket). Other wrappers (uvloop's, say) count as none.
    """
    stream = response.extensions.get("network_stream")
    try:
        sock = stream.get_extra_info("socket") if stream is not None else None
    except Exception:  # a transport without sockets (a mock, say)
        return None
    return sock if isinstance(sock, socket.socket | TransportSocket) else None


# --------------------------------------------------------------------------------------
# The checks, sans-IO: fed bytes, they return the bytes the SDK may see, or raise
# --------------------------------------------------------------------------------------


class _Checker:
    """Parses, validates and times one answer; shared by the sync and async drivers."""

    def __init__(
        self, expect: Expect, response: Any, started: float, read: float | None, *, parse: bool
    ) -> None:
        self.expect = expect
        self._response = weakref.ref(response)  # the response holds us (its stream): no cycle
        self.started = started
        self.read = read
        self.parse = parse
        self.buffer = b""
        self.head = b""
        self.events = 0
        self.finished = False
        self.done = False
        self.last_content: float | None = None
        self.resumed_at: float | None = None
        self.paused = False
        self.fields: dict[str, list[str]] = {}

    @property
    def response(self) -> Any:
        """The response being read (alive for as long as anyone reads it)."""
        return self._response()

    # -- time ---------------------------------------------------------------------

    def due(self) -> float | None:
        """When the answer is late (``None``: not now — the caller is not reading)."""
        if self.paused:
            return None
        limits = [self.expect.deadline]
        if self.read is not None:
            since = max(self.last_content or self.started, self.resumed_at or self.started)
            limits.append((since if self.expect.stream else self.started) + self.read)
        known = [t for t in limits if t is not None]
        return min(known) if known else None

    def pause(self) -> None:
        """Bytes went to the caller: its time, not the server's, until it asks again."""
        self.paused = True

    def resume(self) -> None:
        """The caller asks for more: the wait for content starts again now."""
        if self.paused:
            self.paused, self.resumed_at = False, time.monotonic()

    def late(self) -> WBTimeoutError:
        """The error for an answer that ran out of time (checked against :meth:`due`)."""
        deadline = self.expect.deadline
        if deadline is not None and time.monotonic() >= deadline:
            return self._error(
                WBDeadlineExceededError, "No time was left before the answer was complete."
            )
        if not self.expect.stream:
            what = f"The answer was not complete {self.read:g}s after the request was sent"
        elif self.last_content is None:
            what = f"No content arrived within {self.read:g}s of the request"
        else:
            what = f"No content arrived for {self.read:g}s after the last ({self.events} events)"
        return self._error(WBTimeoutError, what + " (bytes kept arriving, but no answer).")

    # -- bytes ----------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take raw bytes; return what the SDK may see now."""
        if not self.parse:
            return data
        self.head = (self.head + data)[:_BODY_START] if len(self.head) < _BODY_START else self.head
        if not self.expect.stream:
            self.buffer += data
            return b""
        self.buffer += data
        out: list[bytes] = []
        while True:
            line, sep, rest = self.buffer.partition(b"\n")
            if not sep:
                return b"".join(out)
            self.buffer = rest
            out.append(self._line(line.rstrip(b"\r").decode("utf-8", "replace")))

    def end(self) -> bytes:
        """The body ended: the rest for the SDK, or the error saying what is wrong."""
        if not self.parse:
            return b""
        if not self.expect.stream:
            return self._whole_body()
        tail = self._line(self.buffer.decode("utf-8", "replace")) + self._line("")
        if self.events == 0:
            raise self._malformed("The 200 stream carried no answer")
        if not (self.finished or self.done):
            raise self.interrupted(None)
        return tail

    def interrupted(self, cause: BaseException | None) -> WBInferenceError:
        """The error for a stream that broke or ended before its answer did."""
        why = f" ({cause})" if cause is not None else ""
        return self._error(
            WBStreamInterruptedError,
            f"It ended after {self.events} event(s), without finish_reason or [DONE]{why}.",
            chunks=self.events,
        )

    # -- SSE (https://html.spec.whatwg.org/multipage/server-sent-events.html) --------

    def _line(self, line: str) -> bytes:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return b""  # a comment: keepalive
        name, _, value = line.partition(":")
        self.fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        return b""

    def _dispatch(self) -> bytes:
        fields, self.fields = self.fields, {}
        if "data" not in fields:
            return b""  # event:, id:, retry: alone dispatch nothing
        data = "\n".join(fields["data"])
        if not data.strip():
            return b""
        if data.strip() == "[DONE]":  # the SDK stops reading here: judge the stream now
            if not self.finished and self.last_content is None:
                raise self._malformed("The 200 stream ended with [DONE] and no answer")
            self.done = True
            return b"data: [DONE]\n\n"
        try:
            payload = json.loads(data)
        except ValueError:
            raise self._malformed("A stream event was not JSON") from None
        if isinstance(payload, dict) and (payload.get("error") or fields.get("event") == ["error"]):
            raise from_error_body(
                payload, self.response, model=self.expect.model, project=self.expect.project
            )
        self.events += 1
        if isinstance(payload, dict):
            self._note(payload)
        return b"data: " + data.encode() + b"\n\n"

    def _note(self, payload: dict[str, Any]) -> None:
        """Track finish_reason and when content last arrived (the idle-gap clock)."""
        choices = payload.get("choices")
        content = bool(payload.get("usage"))
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                self.finished = content = True
            delta = choice.get("delta") or {}
            if isinstance(delta, dict) and any(
                delta.get(k) for k in ("content", "reasoning", "reasoning_content", "tool_calls")
            ):
                content = True
        if content:
            self.last_content = time.monotonic()

    # -- a whole JSON body ------------------------------------------------------------

    def _whole_body(self) -> bytes:
        body = self.buffer
        try:
            payload = json.loads(body)
        except ValueError:
            raise self._malformed("The body was not JSON") from None
        if isinstance(payload, dict) and payload.get("error"):
            raise from_error_body(
                payload, self.response, model=self.expect.model, project=self.expect.project
            )
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices:
            raise self._malformed("The answer had no choices")
        if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
            raise self._malformed("A choice had no message")
        return body

    # -- errors -------------------------------------------------------------------------

    def _malformed(self, what: str) -> WBMalformedResponseError:
        start = self.head.decode("utf-8", "replace")
        return self._error(
            WBMalformedResponseError, f"{what}; it began: {start!r}.", body_start=start
        )

    def _error(self, cls: type[E], hint: str, **facts: Any) -> E:
        request = self.response.request
        return cls(
            request=request,
            response=self.response if cls is WBMalformedResponseError else None,
            model=self.expect.model,
            url=str(request.url.copy_with(query=None)),
            hints=(hint,),
            **facts,
        )


# --------------------------------------------------------------------------------------
# The drivers: one for threads, one for event loops
# --------------------------------------------------------------------------------------


@functools.cache
def _stream_classes(library: str) -> tuple[type[_Guarded], type[_Guarded]]:
    """The guard as the sync and async byte streams of ``library`` (httpx or httpx2).

    httpx checks that a response's stream is one of its own stream classes.
    """
    module = importlib.import_module(library)
    sync = type("SyncGuardedStream", (_Guarded, module.SyncByteStream), {})
    async_ = type("AsyncGuardedStream", (_Guarded, module.AsyncByteStream), {})
    return sync, async_


class _Guarded:
    """The response's byte stream, through a :class:`_Checker`."""

    def __init__(
        self, raw: Any, checker: _Checker, sock: socket.socket | TransportSocket | None
    ) -> None:
        self.raw = raw
        self.checker = checker
        self.sock = sock

    def __iter__(self) -> Iterator[bytes]:
        checker = self.checker
        alarm = WATCHDOG.watch(checker.due, self._interrupt) if self.sock else None
        try:
            for data in self.raw:
                self._on_time()
                if out := checker.feed(data):
                    checker.pause()
                    yield out
                    checker.resume()
            self._on_time()
            if tail := checker.end():
                yield tail
        except WBInferenceError:
            raise
        except Exception as exc:
            raise self._failure(exc, fired=alarm is not None and alarm.fired) from exc
        finally:
            if alarm is not None:
                alarm.cancel()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """As :meth:`__iter__`, on an event loop.

        With a socket, the watchdog ends a late read as it does for threads: one alarm
        per answer, where a timeout around each chunk's read costs a timer per chunk.
        Without one (a transport that exposes none), each read is bounded by
        :func:`_within`.
        """
        checker = self.checker
        alarm = WATCHDOG.watch(checker.due, self._interrupt) if self.sock else None
        chunks = self.raw.__aiter__()
        try:
            while True:
                if alarm is None:
                    due = checker.due()
                    wait = None if due is None else max(0.0, due - time.monotonic())
                    step = _within(chunks.__anext__(), wait)
                else:
                    self._on_time()
                    step = chunks.__anext__()
                try:
                    data = await step
                except StopAsyncIteration:
                    break
                except (asyncio.TimeoutError, TimeoutError) as exc:
                    raise checker.late() from exc
                except WBInferenceError:
                    raise
                except Exception as exc:
                    raise self._failure(exc, fired=alarm is not None and alarm.fired) from exc
                if out := checker.feed(data):
                    checker.pause()
                    yield out
                    checker.resume()
            self._on_time()
            if tail := checker.end():
                yield tail
        finally:
            if alarm is not None:
                alarm.cancel()

    def _failure(self, exc: Exception, *, fired: bool) -> BaseException:
        """What a transport failure while reading means: late, cut mid-stream, or itself."""
        due = self.checker.due()
        if fired or (due is not None and time.monotonic() >= due):
            return self.checker.late()
        if self.checker.expect.stream and self.checker.events:
            return self.checker.interrupted(exc)
        return exc

    def _on_time(self) -> None:
        due = self.checker.due()
        if due is not None and time.monotonic() >= due:
            raise self.checker.late()

    def _interrupt(self) -> None:
        """Time is up while a read may be blocked: end it (the read returns at once)."""
        assert self.sock is not None
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the underlying stream."""
        self.raw.close()

    async def aclose(self) -> None:
        """Close the underlying stream."""
        await self.raw.aclose()


if sys.version_info >= (3, 11):

    async def _within(step: Awaitable[T], seconds: float | None) -> T:
        """``await step``, or ``TimeoutError`` after ``seconds`` (``None``: no limit).

        ``asyncio.timeout``, not ``wait_for``: that makes a task per chunk read.
        """
        async with asyncio.timeout(seconds):
            return await step

else:  # pragma: no cover - Python 3.10

    async def _within(step: Awaitable[T], seconds: float | None) -> T:
        """``await step``, or ``TimeoutError`` after ``seconds`` (``None``: no limit)."""
        return await asyncio.wait_for(step, seconds)


# --------------------------------------------------------------------------------------
# The watchdog
# --------------------------------------------------------------------------------------


_PAUSED_POLL = 1.0
"""How often the watchdog looks again at a stream whose caller is not reading."""


@dataclass(eq=False)
class _Alarm:
    due: Callable[[], float | None]
    action: Callable[[], None]
    fired: bool = False
    cancelled: bool = False

    def cancel(self) -> None:
        """The answer is complete (or abandoned): never fire.

        The alarm stays in the heap until its time (or a purge): it lets go of the
        stream and its response now.
        """
        self.cancelled = True
        self.due, self.action = _never, _nothing
        WATCHDOG.cancelled()


def _never() -> float | None:
    return None


def _nothing() -> None:
    return None


@dataclass
class _Watchdog:
    """One daemon thread that fires alarms whose (moving) due time has passed."""

    _heap: list[tuple[float, int, _Alarm]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _order: Iterator[int] = field(default_factory=itertools.count)
    _dead: int = 0

    def watch(self, due: Callable[[], float | None], action: Callable[[], None]) -> _Alarm:
        """Call ``action`` once ``due()`` has passed (re-read when it comes: it may move)."""
        alarm = _Alarm(due, action)
        first = due()
        if first is None:
            return alarm
        with self._cond:
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (first, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wb-inference-watchdog", daemon=True
                )
                self._thread.start()
            if earliest is None or first < earliest:
                self._cond.notify()  # only then must the thread wake earlier than planned
        return alarm

    def cancelled(self) -> None:
        """An alarm was cancelled: drop the cancelled ones once they are most of the heap.

        Answers usually end long before their due time, so cancelled alarms would pile up
        until then (one per request of the last ``timeout`` seconds).
        """
        with self._cond:
            self._dead += 1
            if self._dead > 64 and self._dead * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._dead = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, alarm = self._heap[0]
                now = time.monotonic()
                if when > now:
                    self._cond.wait(when - now)
                    continue
                heapq.heappop(self._heap)
                if alarm.cancelled:
                    self._dead = max(0, self._dead - 1)
                    continue
                due = alarm.due()
                if due is None or due > now:  # moved (content came), or the caller paused
                    later = now + _PAUSED_POLL if due is None else due
                    heapq.heappush(self._heap, (later, next(self._order), alarm))
                    continue
                alarm.fired = True
            alarm.action()

    def reset(self) -> None:
        """A forked child has no watchdog thread: start afresh on first use."""
        self._heap, self._cond, self._thread, self._dead = [], threading.Condition(), None, 0


WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=WATCHDOG.reset)
