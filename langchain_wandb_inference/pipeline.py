"""How one model call passes through the policies — written once, run sync or async.

A call flows one way::

    budget -> fallback -> retry -> circuit breaker -> concurrency limiter
           -> HTTP -> error mapping            (and back out: usage, feedback)

Each policy is a small object with a ``handle(call, proceed)`` method written as a
*generator*: it does its bookkeeping, delegates with ``yield from proceed(call)``,
and, when it needs the outside world to wait, yields an :class:`Effect` (sleep, wait
for a concurrency slot, tell the callbacks).  Policies never sleep, never block and
never touch HTTP themselves, so the very same policy code serves ``invoke``,
``ainvoke``, ``stream``, ``astream`` and the batch paths: :func:`run` executes
effects with blocking calls, :func:`arun` awaits them.  There is one retry loop in
the package, not one per path.

Adding a policy is one file holding a class with ``handle`` and one line in
``ChatWBInference._policies``.

Errors raised by the transport are mapped to :mod:`langchain_wandb_inference.errors`
*inside* the pipeline, so every policy sees W&B's typed errors (a quota error is
never mistaken for a rate limit).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

import httpx2

from langchain_wandb_inference.errors import WBDeadlineExceededError, WBTimeoutError, classify

T = TypeVar("T")


class Effect(Protocol):
    """Something a policy asks the driver to do on its behalf (wait, notify)."""

    def run(self) -> Any:
        """Do it with blocking calls (sync paths)."""

    async def arun(self) -> Any:
        """Do it without blocking the event loop (async paths)."""


@dataclass(frozen=True)
class Sleep:
    """Wait before the next attempt (retry backoff)."""

    seconds: float

    def run(self) -> None:
        """Block the thread."""
        time.sleep(self.seconds)

    async def arun(self) -> None:
        """Yield to the event loop."""
        import asyncio

        await asyncio.sleep(self.seconds)


@dataclass(frozen=True)
class Notify:
    """An event for observers (LangChain callbacks): a retry, a fallback hand-over."""

    name: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Send:
    """Send the request for ``call.model`` now; the driver's transport does it."""

    call: Call


@dataclass(frozen=True)
class Attempt:
    """One failed attempt, kept for the error raised when every model failed."""

    model: str
    error: str
    error_type: str


Finalizer = Callable[[str, Mapping[str, Any] | None], None]
"""Called once the answer is fully consumed, with the answering model and its usage."""


@dataclass
class Call:
    """One logical model call as the policies see it (no LangChain types).

    ``model`` is the model the next attempt goes to; the fallback policy derives
    a call per model with :meth:`for_model`, which shares the history, finalizers
    and deadline with the original.
    """

    model: str
    base_url: str
    project: str | None = None
    deadline: float | None = None
    """``time.monotonic()`` by which the whole call (retries, fallbacks) must end."""
    request_timeout: Any = None
    """Per-request timeout: seconds (cut to what is left of the deadline), or an
    ``httpx`` timeout object, passed through as the caller chose it."""
    hand_over: tuple[type[BaseException], ...] = ()
    """Errors an outer policy wants raised at once (no retry): set by the fallback."""
    prompt_tokens: int = 0
    """A rough count of the prompt's tokens, for the budget's check before sending."""
    history: list[Attempt] = field(default_factory=list)
    finalizers: list[Finalizer] = field(default_factory=list)

    def for_model(self, model: str, *, hand_over: tuple[type[BaseException], ...]) -> Call:
        """The same call aimed at another model (shares history and finalizers)."""
        return Call(
            model=model,
            base_url=self.base_url,
            project=self.project,
            deadline=self.deadline,
            request_timeout=self.request_timeout,
            hand_over=hand_over,
            prompt_tokens=self.prompt_tokens,
            history=self.history,
            finalizers=self.finalizers,
        )

    def remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def timeout(self) -> Any:
        """The timeout for the next request: the per-request one, cut to the deadline."""
        left = self.remaining()
        if left is None:
            return self.request_timeout
        if self.request_timeout is None:
            return left
        if isinstance(self.request_timeout, int | float):
            return min(left, self.request_timeout)
        return self.request_timeout  # per-phase limits: the deadline applies between attempts

    def on_finish(self, finalizer: Finalizer) -> None:
        """Run ``finalizer`` when the answer has been consumed.

        A stream abandoned half-read runs it when its generator is closed (``close()``,
        leaving an ``async for``, or garbage collection).
        """
        self.finalizers.append(finalizer)

    def finish(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Run the finalizers once; the chat model calls this after the last chunk."""
        finalizers, self.finalizers[:] = list(self.finalizers), []
        for finalizer in finalizers:
            finalizer(model, usage)


Plan = Generator[Any, Any, T]
Step = Callable[[Call], Plan[Any]]


class Policy(Protocol):
    """A step of the pipeline: bookkeeping around ``yield from proceed(call)``."""

    def handle(self, call: Call, proceed: Step) -> Plan[Any]:
        """Run the rest of the pipeline for ``call``, yielding effects when needed."""
        ...


def _transport(call: Call) -> Plan[Any]:
    """Innermost step: send, and map whatever the SDK raised to W&B's typed errors.

    Nothing is sent once the call's deadline has passed (a fallback reached late, a
    request sent back to the limiter's queue): that is a timeout, not a request.
    """
    left = call.remaining()
    if left is not None and left <= 0:
        raise deadline_exceeded(call)
    try:
        return (yield Send(call))
    except Exception as exc:
        mapped = classify(exc, model=call.model)
        left = call.remaining()
        if isinstance(mapped, WBTimeoutError) and left is not None and left <= 0:
            raise deadline_exceeded(call, "an answer came") from exc  # cut short by us
        if mapped is exc:
            raise
        raise mapped from exc


def deadline_exceeded(call: Call, what: str = "a request could be sent") -> WBDeadlineExceededError:
    """The error for a call whose own deadline ran out on this side."""
    message = (
        f"The call's deadline (RetryPolicy.deadline) ran out before {what} to {call.model!r}. "
        "Raise the deadline, or use fewer retries or fallback models."
    )
    request = httpx2.Request("POST", call.base_url.rstrip("/") + "/chat/completions")
    return WBDeadlineExceededError(request, model=call.model, message=message)


def compose(policies: Sequence[Policy]) -> Step:
    """Chain policies outermost-first around the transport."""
    step: Step = _transport
    for policy in reversed(policies):
        step = partial(policy.handle, proceed=step)
    return step


class _Stepper:
    """Resumes a plan with the last effect's reply, or throws the effect's error into it."""

    def __init__(self, plan: Plan[Any]) -> None:
        self.plan = plan
        self.reply: Any = None
        self.error: BaseException | None = None
        self.value: Any = None

    def advance(self) -> Any:
        """The plan's next effect, or ``None`` once it returned (its value is ``value``)."""
        reply, error, self.reply, self.error = self.reply, self.error, None, None
        try:
            return self.plan.throw(error) if error is not None else self.plan.send(reply)
        except StopIteration as done:
            self.value = done.value
            return None

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Hand whatever the effect raises back to the plan (which re-raises it)."""
        try:
            yield
        except BaseException as exc:
            self.error = exc


def run(
    plan: Plan[T],
    send: Callable[[Call], Any],
    notify: Callable[[Notify], None],
) -> T:
    """Drive a plan with blocking effects (invoke, stream, batch)."""
    stepper = _Stepper(plan)
    while (effect := stepper.advance()) is not None:
        with stepper.capture():
            if isinstance(effect, Send):
                stepper.reply = send(effect.call)
            elif isinstance(effect, Notify):
                notify(effect)
            else:
                stepper.reply = effect.run()
    return stepper.value  # type: ignore[no-any-return]


async def arun(
    plan: Plan[T],
    send: Callable[[Call], Awaitable[Any]],
    notify: Callable[[Notify], Awaitable[None]],
) -> T:
    """Drive the same plan without blocking the event loop (ainvoke, astream, abatch)."""
    stepper = _Stepper(plan)
    while (effect := stepper.advance()) is not None:
        with stepper.capture():
            if isinstance(effect, Send):
                stepper.reply = await send(effect.call)
            elif isinstance(effect, Notify):
                await notify(effect)
            else:
                stepper.reply = await effect.arun()
    return stepper.value  # type: ignore[no-any-return]
