"""The probe's steps: what each sends, and which observation feeds which assumption.

A step sends a few cheap requests (tiny prompts, small ``max_tokens``) and returns, for
each assumption of :mod:`probe` it observes, a :class:`Seen`: the observation in the
wording of the assumption's ``expected`` values (made by :mod:`.read`), with
evidence.  Wire-level questions use raw requests (:mod:`.wire`); "does the
package work end to end" uses :class:`ChatWBInference` under the same budget.  A step
never judges: its assumption does.  :data:`STEPS` is the order they run in.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage
from pydantic import SecretStr

from langchain_wandb_inference import errors
from langchain_wandb_inference.chat_models import ChatWBInference
from langchain_wandb_inference.models import model_info
from langchain_wandb_inference.policies import Budget
from langchain_wandb_inference.testing.faults import Fault
from langchain_wandb_inference.testing.probe import read
from langchain_wandb_inference.testing.probe.wire import (
    RATE_LIMIT_HEADERS,
    Exchange,
    Service,
    Wire,
    notable_headers,
    shape,
    sse_lines,
)

BURSTS = (2, 4, 8)
"""Requests in flight at once, tried in turn until a burst meets a 429 (§6: about one
per project was observed; no number is published)."""
BURST_HOLD = 0.5
"""Seconds the emulator holds the first request of a burst.  Why: it answers in
microseconds, so without a hold nothing would be in flight together; the live service
takes about that long anyway."""
PROBE = "wb-inference-probe"
UNKNOWN_MODEL = f"{PROBE}/no-such-model"
MALFORMED_PROJECT = PROBE
UNKNOWN_PROJECT = f"{PROBE}-nonexistent-team/{PROBE}"
WRONG_KEY = f"{PROBE}-not-a-key"
OK_PROMPT = "Reply with OK."
HELLO_PROMPT = "Say hello in five words."


def _function(name: str, what: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    return {
        "type": "function",
        "function": {"name": name, "description": what, "parameters": parameters},
    }


WEATHER = _function("get_weather", "Current weather in a city.")
CLOCK = _function("get_time", "Current local time in a city.")
ANSWER_SCHEMA = {
    "title": "probe_answer",
    "description": "A one-word answer.",
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Seen:
    """One observation: ``observed`` (``None``: nothing to observe, ``note`` says why)."""

    observed: str | None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None


@dataclass
class Context:
    """What the steps share during one probe run."""

    wire: Wire
    service: Service
    budget: Budget
    listed: set[str] = field(default_factory=set)
    """IDs ``GET /models`` returned (empty until the models step ran)."""
    nonce: str = field(default_factory=lambda: os.urandom(4).hex())
    """Keeps this run's cache prefix apart from earlier runs'."""
    wanted: frozenset[str] = frozenset()
    """The assumptions the running step is asked for (those that apply to its model)."""


Observations = dict[str, Seen]


def room(model: str) -> int:
    """``max_tokens`` for an answer: enough for a reasoning model to reach its answer."""
    info = model_info(model)
    return 1024 if info is not None and info.is_reasoning else 64


def _ask(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _refused(x: Exchange, names: tuple[str, ...]) -> Observations:
    """Every observation of a step whose request was refused: the refusal itself."""
    return dict.fromkeys(names, Seen(x.refused_param(), x.evidence()))


# --- service-wide steps ------------------------------------------------------------------


def auth(ctx: Context, model: str) -> Observations:
    """A wrong key, then no key at all (§5)."""
    body = _ask(model, OK_PROMPT, max_tokens=1)
    wrong = ctx.wire.chat(body, headers=ctx.wire.headers(key=WRONG_KEY))
    missing = ctx.wire.chat(body, headers=ctx.wire.headers(key=None))
    return {
        "auth.bad_key": Seen(wrong.quoted(model), wrong.evidence()),
        "auth.no_key": Seen(missing.quoted(model), missing.evidence()),
    }


def project(ctx: Context, model: str) -> Observations:
    """The same cheap request without, with a malformed, with an unknown project (§1)."""
    found = {}
    for name, value in (
        ("project.missing", None),
        ("project.malformed", MALFORMED_PROJECT),
        ("project.unknown", UNKNOWN_PROJECT),
    ):
        x = ctx.wire.chat(
            _ask(model, OK_PROMPT, max_tokens=1), headers=ctx.wire.headers(project=value)
        )
        found[name] = Seen(x.verdict(), x.evidence() if x.status >= 400 else {})
    return found


def listing(ctx: Context, model: str) -> Observations:
    """``GET /models``: its shape, and the listing against the catalog (§2, §7)."""
    x = ctx.wire.get("/models")
    body = x.json if isinstance(x.json, dict) else {}
    names = (
        "models.shape",
        "models.catalog_listed",
        "models.not_in_catalog",
        "models.retired_listed",
    )
    if x.status != 200 or not isinstance(body.get("data"), list):
        return dict.fromkeys(names, Seen(x.verdict(), x.evidence()))
    ctx.listed = {str(e.get("id")) for e in body["data"] if isinstance(e, dict)}
    sample = {"object": body.get("object"), "entries": len(body["data"]), "first": body["data"][:1]}
    return {
        "models.shape": Seen(read.models_shape(body), sample),
        "models.catalog_listed": Seen(read.catalog_listed(ctx.listed), {"listed": len(ctx.listed)}),
        "models.not_in_catalog": Seen(read.not_in_catalog(ctx.listed)),
        "models.retired_listed": Seen(read.retired_listed(ctx.listed)),
    }


def provoked_errors(ctx: Context, model: str) -> Observations:
    """A model that does not exist (404), and a parameter out of range (422) (§3, §5)."""
    unknown = ctx.wire.chat(_ask(UNKNOWN_MODEL, OK_PROMPT, max_tokens=1), priced=False)
    invalid = ctx.wire.chat(_ask(model, OK_PROMPT, max_tokens=1, temperature=5))
    return {
        "errors.unknown_model": Seen(unknown.quoted(UNKNOWN_MODEL), unknown.evidence()),
        "errors.invalid_param": Seen(invalid.refused_param(), invalid.evidence()),
    }


def headers(ctx: Context, model: str) -> Observations:
    """A cheap answer's response headers: names and value shapes only (§5)."""
    x = ctx.wire.chat(_ask(model, OK_PROMPT, max_tokens=1))
    notable = notable_headers(x.response.headers)
    ids = [f"{n}: {s}" for n, s in notable.items() if re.search(r"request.?id", n)]
    limits = sorted(n for n in notable if RATE_LIMIT_HEADERS.search(n))
    evidence = {"status": x.status, "headers": notable}
    return {
        "headers.request_id": Seen(", ".join(ids) or "absent", evidence),
        "headers.rate_limit": Seen(", ".join(limits) or "none", evidence),
    }


def burst(ctx: Context, model: str) -> Observations:
    """Bursts of requests in flight at once until a 429; its body and headers (§5, §6)."""
    statuses: dict[int, list[int]] = {}
    for size in BURSTS:
        if ctx.service.emulator is not None:
            ctx.service.emulator.script(model, Fault.delay(BURST_HOLD))
        answers = _together(ctx.wire, _ask(model, OK_PROMPT, max_tokens=1), size)
        statuses[size] = sorted(x.status for x in answers)
        refused = next((x for x in answers if x.status == 429), None)
        if refused is None:
            continue
        notable = notable_headers(refused.response.headers)
        waits = [f"{n}: {s}" for n, s in notable.items() if n.startswith("retry-after")]
        limits = sorted(n for n in notable if RATE_LIMIT_HEADERS.search(n) and n not in waits)
        evidence = {**refused.evidence(), "burst": size, "statuses": statuses}
        return {
            "limits.concurrency_429": Seen(refused.verdict(), evidence),
            "limits.retry_after": Seen(", ".join(waits) or "absent", evidence),
            "limits.headers": Seen(", ".join(limits) or "none", evidence),
        }
    nothing = Seen(None, {"statuses": statuses}, note="no 429 came back to inspect")
    none_seen = Seen(f"no 429 up to {BURSTS[-1]} in flight", {"statuses": statuses})
    return {
        "limits.concurrency_429": none_seen,
        "limits.retry_after": nothing,
        "limits.headers": nothing,
    }


def _together(wire: Wire, body: dict[str, Any], size: int) -> list[Exchange]:
    """``size`` identical requests started at once; a budget refusal is raised after all end."""
    start = threading.Barrier(size)

    def send() -> Exchange:
        start.wait()
        return wire.chat(body)

    with ThreadPoolExecutor(max_workers=size) as pool:
        futures = [pool.submit(send) for _ in range(size)]
    for future in futures:
        if (failure := future.exception()) is not None:
            raise failure
    return [future.result() for future in futures]


def overflow(ctx: Context, model: str) -> Observations:
    """A prompt past the smallest listed context window, priced before it is sent (§10)."""
    known = [
        (i.context_window, i.id) for m in ctx.listed if (i := model_info(m)) and i.context_window
    ]
    if not known:
        return {"errors.context_overflow": Seen(None, note="no listed model with a known context")}
    window, target = min(known)
    count = window + 1000
    text = " ".join(str(n) for n in range(count))  # at least one token a number
    x = ctx.wire.chat(_ask(target, text, max_tokens=1), prompt_tokens=2 * count)  # at most two
    evidence = {**x.evidence(), "model": target, "context_window": window, "numbers": count}
    return {"errors.context_overflow": Seen(x.verdict(), evidence)}


# --- per-model steps -------------------------------------------------------------------


def answer(ctx: Context, model: str) -> Observations:
    """A plain answer: its shape and where reasoning is (§4)."""
    x = ctx.wire.chat(_ask(model, HELLO_PROMPT, max_tokens=room(model)))
    if x.status != 200:
        return _refused(x, ("chat.shape", "reasoning.field", "reasoning.plain_model"))
    body, message, usage = (
        x.json if isinstance(x.json, dict) else {},
        x.message(),
        x.wire_usage() or {},
    )
    fields = {"message fields": sorted(message), "usage": usage}
    return {
        "chat.shape": Seen(read.chat_shape(body, usage), fields),
        "reasoning.field": Seen(read.reasoning_field(message), fields),
        "reasoning.plain_model": Seen(read.plain_reasoning(message), fields),
    }


def thinking_off(ctx: Context, model: str) -> Observations:
    """``enable_thinking=False`` on a reasoning model (§3, §4)."""
    body = _ask(model, HELLO_PROMPT, max_tokens=room(model))
    x = ctx.wire.chat({**body, "chat_template_kwargs": {"enable_thinking": False}})
    if x.status == 200:
        reasons = read.reasoning_field(x.message()) != "no reasoning text"
        seen = Seen(
            "reasoning present" if reasons else "no reasoning",
            {"message fields": sorted(x.message())},
        )
    else:
        seen = Seen(x.verdict(), x.evidence())
    return dict.fromkeys(("reasoning.thinking_off", "reasoning.thinking_off_always"), seen)


def stream(ctx: Context, model: str) -> Observations:
    """A streamed answer with usage asked for: chunks, usage, end, framing (§4, §10)."""
    body = _ask(model, HELLO_PROMPT, max_tokens=room(model), stream=True)
    x = ctx.wire.chat({**body, "stream_options": {"include_usage": True}})
    if x.status != 200:
        names = ("first_chunk", "usage_chunk", "done", "framing", "reasoning_delta")
        return _refused(x, tuple(f"stream.{n}" for n in names))
    chunks, deltas, events = x.chunks(), x.deltas(), x.events
    evidence = {"chunks": len(chunks), "first": chunks[:1], "last": chunks[-1:], "end": events[-1:]}
    return {
        "stream.first_chunk": Seen(read.first_chunk(deltas), evidence),
        "stream.usage_chunk": Seen(read.usage_place(chunks), evidence),
        "stream.done": Seen(read.stream_end(events), evidence),
        "stream.framing": Seen(read.framing(kind for kind, _ in sse_lines(x.response.content))),
        "stream.reasoning_delta": Seen(read.reasoning_deltas(deltas), evidence),
    }


def tools(ctx: Context, model: str) -> Observations:
    """A forced function call, plain and streamed, then two tools in parallel (§3, §4)."""
    forced = {"type": "function", "function": {"name": "get_weather"}}
    body = _ask(model, "What is the weather in Paris?", max_tokens=room(model) + 64)
    body |= {"tools": [WEATHER], "tool_choice": forced}
    plain = ctx.wire.chat(body)
    if plain.status != 200:
        return _refused(
            plain, ("tools.shape", "tools.id_style", "tools.stream_fragments", "tools.parallel")
        )
    calls = plain.message().get("tool_calls")
    first = calls[0] if isinstance(calls, list) and calls and isinstance(calls[0], dict) else {}
    id_shape = shape(str(first.get("id")))
    streamed = ctx.wire.chat({**body, "stream": True})
    pieces = [
        c for d in streamed.deltas() for c in d.get("tool_calls") or [] if isinstance(c, dict)
    ]
    both = _ask(model, "Call get_weather for Paris and get_time for Tokyo, both at once.")
    both |= {"max_tokens": room(model) + 64, "tools": [WEATHER, CLOCK], "tool_choice": "required"}
    parallel = ctx.wire.chat({**both, "parallel_tool_calls": True})
    calls_made = {"calls": len(parallel.message().get("tool_calls") or [])}
    accepted = (
        Seen("accepted", calls_made)
        if parallel.status == 200
        else Seen(parallel.refused_param(), parallel.evidence())
    )
    return {
        "tools.shape": Seen(read.tool_shape(calls, "get_weather"), {"tool_calls": calls}),
        "tools.id_style": Seen(read.id_style(first.get("id"), id_shape), {"id shape": id_shape}),
        "tools.stream_fragments": Seen(read.fragments(pieces), {"tool-call deltas": pieces[:6]}),
        "tools.parallel": accepted,
    }


def formats(ctx: Context, model: str) -> Observations:
    """``response_format`` json_schema, then json_object (§3)."""
    prompt = 'What is the capital of France? Answer in JSON with the key "answer".'
    schema = {"name": "probe_answer", "strict": True, "schema": ANSWER_SCHEMA}
    found = {}
    for name, fmt, keys in (
        (
            "format.json_schema",
            {"type": "json_schema", "json_schema": schema},
            frozenset({"answer"}),
        ),
        ("format.json_object", {"type": "json_object"}, None),
    ):
        x = ctx.wire.chat(_ask(model, prompt, max_tokens=room(model), response_format=fmt))
        content = x.message().get("content")
        found[name] = (
            Seen(read.json_answer(content, keys), {"content": content})
            if x.status == 200
            else Seen(x.refused_param(), x.evidence())
        )
    return found


def cache(ctx: Context, model: str) -> Observations:
    """A ~1,200-token prefix sent twice, then once more with a fresh ``cache_salt`` (§3, §4)."""
    lines = (
        f"Reference note {i} of run {ctx.nonce}: the probe repeats this line." for i in range(72)
    )
    system = {"role": "system", "content": "\n".join(lines)}
    body = {
        "model": model,
        "max_tokens": 1,
        "messages": [system, {"role": "user", "content": OK_PROMPT}],
    }
    ctx.wire.chat(body)
    repeat = ctx.wire.chat(body)
    salted = ctx.wire.chat({**body, "cache_salt": f"{PROBE}-{ctx.nonce}-salt"})
    reported = "cached tokens reported" if _cached(repeat) else "none reported"
    repeated = Seen(
        reported if repeat.status == 200 else repeat.verdict(), {"usage": repeat.wire_usage()}
    )
    salt = f"accepted, {'cached tokens reported' if _cached(salted) else 'no cached tokens'}"
    return {
        "cache.cached_tokens": repeated,
        "cache.not_reported": repeated,
        "cache.salt": Seen(
            salt if salted.status == 200 else salted.refused_param(), {"usage": salted.wire_usage()}
        ),
    }


def _cached(x: Exchange) -> int:
    return int((x.usage() or {}).get("input_token_details", {}).get("cache_read") or 0)


def logprobs(ctx: Context, model: str) -> Observations:
    """``logprobs=true`` (§3: some models lack it)."""
    x = ctx.wire.chat(_ask(model, "Say OK.", max_tokens=room(model), logprobs=True, top_logprobs=2))
    if x.status != 200:
        return _refused(x, ("logprobs",))
    found = (x.first_choice() or {}).get("logprobs")
    return {"logprobs": Seen(read.logprobs(found), {"logprobs": str(found)[:500]})}


def package(ctx: Context, model: str) -> Observations:
    """ChatWBInference end to end: invoke, stream, tools, structured output."""
    llm = ChatWBInference(
        model=model,
        api_key=SecretStr(ctx.service.api_key),
        base_url=ctx.service.base_url,
        project=ctx.service.project,
        timeout=ctx.service.timeout,
        max_completion_tokens=room(model) + 64,
        budget=ctx.budget,
    )
    reasons = bool((info := model_info(model)) and info.is_reasoning)

    def invoke() -> list[str]:
        message = llm.invoke(HELLO_PROMPT)
        blocks = message.content_blocks
        return _lacking(
            text=bool(message.text),
            usage=bool(message.usage_metadata),
            model_name=bool(message.response_metadata.get("model_name")),
            reasoning_block=not reasons or (bool(blocks) and blocks[0].get("type") == "reasoning"),
        )

    def streamed() -> list[str]:
        chunks = list(llm.stream(HELLO_PROMPT))
        return _lacking(
            text=bool("".join(c.text for c in chunks)),
            usage_once=sum(1 for c in chunks if c.usage_metadata) == 1,
            reasoning=not reasons
            or any(c.additional_kwargs.get("reasoning_content") for c in chunks),
        )

    def tool_call() -> list[str]:
        message = llm.bind_tools([WEATHER], tool_choice="get_weather").invoke("Weather in Paris?")
        calls = message.tool_calls if isinstance(message, AIMessage) else []
        return _lacking(
            tool_call=bool(calls)
            and calls[0]["name"] == "get_weather"
            and "city" in calls[0]["args"]
        )

    def structured() -> list[str]:
        result = llm.with_structured_output(ANSWER_SCHEMA).invoke("What is the capital of France?")
        return _lacking(answer=isinstance(result, dict) and isinstance(result.get("answer"), str))

    checks = {
        "package.invoke": invoke,
        "package.stream": streamed,
        "package.tools": tool_call,
        "package.structured": structured,
    }
    return {name: _works(check) for name, check in checks.items() if name in ctx.wanted}


def _lacking(**checks: bool) -> list[str]:
    return [name.replace("_", " ") for name, passed in checks.items() if not passed]


def _works(check: Callable[[], list[str]]) -> Seen:
    """``works``, what was missing, or what was raised (a budget refusal propagates).

    Each check stands alone: one that raises (a parser on a malformed answer, say) does
    not hide what the others observe.
    """
    try:
        missing = check()
    except errors.WBBudgetExceededError:
        raise
    except Exception as exc:
        return Seen(f"raises {type(exc).__name__}", {"error": str(exc)[:1000]})
    return Seen(f"missing: {', '.join(missing)}" if missing else "works")


@dataclass(frozen=True)
class Step:
    """Observations made together, recorded in one cassette (per model if ``per_model``)."""

    name: str
    observes: tuple[str, ...]
    run: Callable[[Context, str], Observations]
    per_model: bool = False


STEPS: tuple[Step, ...] = (
    Step("auth", ("auth.bad_key", "auth.no_key"), auth),
    Step("project", ("project.missing", "project.malformed", "project.unknown"), project),
    Step(
        "models",
        ("models.shape", "models.catalog_listed", "models.not_in_catalog", "models.retired_listed"),
        listing,
    ),
    Step("errors", ("errors.unknown_model", "errors.invalid_param"), provoked_errors),
    Step("headers", ("headers.request_id", "headers.rate_limit"), headers),
    Step("chat", ("chat.shape", "reasoning.field", "reasoning.plain_model"), answer, True),
    Step(
        "thinking", ("reasoning.thinking_off", "reasoning.thinking_off_always"), thinking_off, True
    ),
    Step(
        "stream",
        tuple(
            f"stream.{n}"
            for n in ("first_chunk", "usage_chunk", "done", "framing", "reasoning_delta")
        ),
        stream,
        True,
    ),
    Step(
        "tools",
        ("tools.shape", "tools.id_style", "tools.stream_fragments", "tools.parallel"),
        tools,
        True,
    ),
    Step("format", ("format.json_schema", "format.json_object"), formats, True),
    Step("cache", ("cache.cached_tokens", "cache.not_reported", "cache.salt"), cache, True),
    Step("logprobs", ("logprobs",), logprobs, True),
    Step(
        "package",
        ("package.invoke", "package.stream", "package.tools", "package.structured"),
        package,
        True,
    ),
    Step("burst", ("limits.concurrency_429", "limits.retry_after", "limits.headers"), burst),
    Step("overflow", ("errors.context_overflow",), overflow),
)
"""In the order they run: cheap service checks, then each model, the costliest last."""
