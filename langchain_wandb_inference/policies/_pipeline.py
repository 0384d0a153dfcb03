"""How one model call passes through the policies — written once, run sync or async.

A call flows one way::

    budget -> fallback -> retry -> circuit breaker -> concurrency limiter
           -> HTTP -> error mapping            (and back out: usage, feedback)

Each policy is a small object with a ``handle(call, proceed)`` method written as a
*generator*: it does its bookkeeping, delegates with ``yield from proceed(call)``, and,
when it needs the outside world, yields an effect (sleep, wait for a concurrency slot,
read or update shared state, tell the callbacks).  Policies never sleep, block or do I/O
themselves, so the very same policy code serves ``invoke``, ``ainvoke``, ``stream``,
``astream`` and the batch paths: :func:`run` executes effects with blocking calls,
:func:`arun` awaits them.  There is one retry loop in the package, not one per path.

What outlives the pipeline — a concurrency slot held while a stream is read, a budget
reservation settled once the usage is known — is handed back as :class:`Finish`: the
policies :class:`Defer` a :class:`Finalizer`, and the caller runs them once the answer
is consumed (or abandoned).

Errors raised by the transport are redacted and mapped to
:mod:`langchain_wandb_inference.errors` *inside* the pipeline, so every policy sees
W&B's typed errors (a quota error is never mistaken for a rate limit).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import httpx2

from langchain_wandb_inference.errors import WBDeadlineExceededError, WBTimeoutError, classify

T = TypeVar("T")
Usage = Mapping[str, Any]
_PROCESS = uuid.uuid4().hex[:12]
_serial = itertools.count()


def _new_id() -> str:
    """A call id unique across processes and hosts, cheaper than a uuid per call."""
    return f"{_PROCESS}-{next(_serial)}"


os.register_at_fork(after_in_child=lambda: globals().update(_PROCESS=uuid.uuid4().hex[:12]))


@dataclass(frozen=True, eq=False)
class Call:
    """One logical model call as the policies see it (no LangChain types).

    Holds only what every policy may need.  ``model`` is the model the next attempt
    goes to; the fallback policy derives one call per model with :meth:`for_model`.
    """

    model: str
    base_url: str
    project: str | None = None
    deadline: float | None = None
    """``time.monotonic()`` by which the whole call (retries, fallbacks) must end."""
    request_timeout: Any = None
    """Per-request timeout: seconds (cut to what is left of the deadline), or an httpx
    timeout object, passed through as the caller chose it."""
    fallback_to: str | None = None
    """The model this call is handed to if ``model`` cannot serve it (``None``: none)."""
    fingerprint: Callable[[], str] = field(default=lambda: "", repr=False)
    """The request's content, hashed without the model: repeats of one request share it."""
    id: str = field(default_factory=lambda: _new_id())
    """Unique per call and model (across processes too): a retried request keeps it."""

    def for_model(self, model: str, fallback_to: str | None) -> Call:
        """The same call aimed at ``model``, handing over to ``fallback_to``."""
        return replace(self, model=model, fallback_to=fallback_to, id=_new_id())

    def remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

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


# --------------------------------------------------------------------------------------
# Effects
# --------------------------------------------------------------------------------------


class Effect(Protocol):
    """Something a policy asks the driver to do on its behalf."""

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
        await asyncio.sleep(self.seconds)


class Io(Generic[T]):
    """Read or update shared state (in-process, or a coordination server).

    ``target.<method>(*args, **kwargs)``, or ``await target.a<method>(...)`` on async
    paths.  Every call makes a few of these: it is a plain class, not a dataclass, and
    looks its method up only when run.
    """

    __slots__ = ("args", "kwargs", "method", "target")

    def __init__(self, target: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.target, self.method, self.args, self.kwargs = target, method, args, kwargs

    def run(self) -> T:
        """Call the blocking twin."""
        result: T = getattr(self.target, self.method)(*self.args, **self.kwargs)
        return result

    async def arun(self) -> T:
        """Await the async twin."""
        result: T = await getattr(self.target, "a" + self.method)(*self.args, **self.kwargs)
        return result


def io(target: Any, method: str, *args: Any, **kwargs: Any) -> Io[Any]:
    """The effect of ``target.<method>(...)``, or ``await target.a<method>(...)``."""
    return Io(target, method, args, kwargs)


@dataclass(frozen=True)
class Notify:
    """An event for observers (LangChain callbacks): a retry, a fallback hand-over."""

    name: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Send:
    """Send the request for ``call.model`` now; the driver's transport does it."""

    call: Call


class Finalizer(Protocol):
    """What a policy needs done once the answer has been consumed (or abandoned)."""

    def progress(self, reading: bool) -> None:
        """The caller waits for the next part of a stream (``True``) or got one (``False``)."""

    def finish(self, model: str, usage: Usage | None) -> None:
        """The answer from ``model`` is done (``usage``: its usage, if it was reported)."""

    async def afinish(self, model: str, usage: Usage | None) -> None:
        """Async twin of :meth:`finish`."""


@dataclass(frozen=True)
class Defer:
    """Run ``finalizer`` once the answer has been consumed."""

    finalizer: Finalizer


class Finish:
    """The finalizers a successful call left behind; each runs exactly once."""

    def __init__(self) -> None:
        self._finalizers: list[Finalizer] = []

    def add(self, finalizer: Finalizer) -> None:
        """Keep ``finalizer`` for :meth:`__call__`."""
        self._finalizers.append(finalizer)

    def progress(self, reading: bool) -> None:
        """Tell every finalizer how the stream is progressing."""
        for finalizer in self._finalizers:
            finalizer.progress(reading)

    def __call__(self, model: str, usage: Usage | None) -> None:
        """Run the finalizers (innermost first), once."""
        finalizers, self._finalizers = self._finalizers, []
        for finalizer in finalizers:
            finalizer.finish(model, usage)

    async def acall(self, model: str, usage: Usage | None) -> None:
        """Async twin of :meth:`__call__`."""
        finalizers, self._finalizers = self._finalizers, []
        for finalizer in finalizers:
            await finalizer.afinish(model, usage)


# --------------------------------------------------------------------------------------
# Composition and drivers
# --------------------------------------------------------------------------------------

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
        raise deadline_exceeded(call, "a request could be sent")
    try:
        return (yield Send(call))
    except Exception as exc:
        mapped = classify(exc, model=call.model, project=call.project)
        left = call.remaining()
        if isinstance(mapped, WBTimeoutError) and left is not None and left <= 0:
            raise deadline_exceeded(call, "an answer came") from exc  # cut short by us
        if mapped is exc:
            raise
        raise mapped from exc


def deadline_exceeded(call: Call, before: str) -> WBDeadlineExceededError:
    """The error for a call whose own deadline ran out on this side."""
    url = call.base_url.rstrip("/") + "/chat/completions"
    return WBDeadlineExceededError(
        request=httpx2.Request("POST", url),
        model=call.model,
        url=url,
        hints=(f"No time was left before {before}.",),
    )


def compose(policies: Sequence[Policy]) -> Step:
    """Chain policies outermost-first around the transport."""
    step: Step = _transport
    for policy in reversed(policies):
        step = partial(policy.handle, proceed=step)
    return step


class _Stepper:
    """Resumes a plan with the last effect's reply, or throws the effect's error into it.

    Each method returns the plan's next effect, or ``None`` once it returned (its value
    is then ``value``); :class:`Defer` effects are kept in ``finish`` on the way.
    """

    def __init__(self, plan: Plan[Any]) -> None:
        self.plan = plan
        self.value: Any = None
        self.finish = Finish()

    def send(self, reply: Any = None) -> Any:
        """Resume the plan with ``reply`` (``None`` starts it)."""
        return self._next(self.plan.send, reply)

    def throw(self, error: BaseException) -> Any:
        """Raise ``error`` inside the plan, where the effect was yielded."""
        return self._next(self.plan.throw, error)

    def _next(self, resume: Callable[[Any], Any], argument: Any) -> Any:
        while True:
            try:
                effect = resume(argument)
            except StopIteration as done:
                self.value = done.value
                return None
            if not isinstance(effect, Defer):
                return effect
            self.finish.add(effect.finalizer)
            resume, argument = self.plan.send, None


def run(
    plan: Plan[T], send: Callable[[Call], Any], notify: Callable[[Notify], None]
) -> tuple[T, Finish]:
    """Drive a plan with blocking effects (invoke, stream, batch)."""
    stepper = _Stepper(plan)
    effect = stepper.send()
    while effect is not None:
        try:
            if isinstance(effect, Send):
                reply = send(effect.call)
            elif isinstance(effect, Notify):
                notify(effect)
                reply = None
            else:
                reply = effect.run()
        except BaseException as exc:  # the plan decides: handle it, or re-raise it
            effect = stepper.throw(exc)
        else:
            effect = stepper.send(reply)
    return stepper.value, stepper.finish


async def arun(
    plan: Plan[T],
    send: Callable[[Call], Awaitable[Any]],
    notify: Callable[[Notify], Awaitable[None]],
) -> tuple[T, Finish]:
    """Drive the same plan without blocking the event loop (ainvoke, astream, abatch)."""
    stepper = _Stepper(plan)
    effect = stepper.send()
    while effect is not None:
        try:
            if isinstance(effect, Send):
                reply = await send(effect.call)
            elif isinstance(effect, Notify):
                await notify(effect)
                reply = None
            else:
                reply = await effect.arun()
        except BaseException as exc:
            effect = stepper.throw(exc)
        else:
            effect = stepper.send(reply)
    return stepper.value, stepper.finish
