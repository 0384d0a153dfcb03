"""Reading what the service sent into the probe's words (the ``expected`` values' wording).

Each function takes parsed JSON (a body, a message, stream chunks) and returns one short
normalised phrase: the phrase the contract expects when the service behaves as
documented, and a plain description of what it did otherwise.  Pure functions, no I/O:
the steps (``steps``) feed them, the assumptions (``probe``) judge the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_wandb_inference.models import (
    Lifecycle,
    is_lora_artifact,
    model_info,
    unlisted_models,
)

MODEL_ENTRY = frozenset({"id", "object", "created", "owned_by", "root"})
"""The fields of a ``GET /models`` entry (§2)."""
_REASONING = ("reasoning", "reasoning_content")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _problems(checks: Mapping[str, bool], fine: str) -> str:
    """``fine`` when every check passed, else the failed checks' names, ``; ``-joined."""
    return "; ".join(name for name, passed in checks.items() if not passed) or fine


def models_shape(body: Mapping[str, Any]) -> str:
    """``as documented``, or how the listing's shape differs (§2)."""
    entries = [e for e in _list(body.get("data")) if isinstance(e, dict)]
    extra = sorted({k for e in entries for k in e} - MODEL_ENTRY)
    lacking = sorted({k for e in entries for k in MODEL_ENTRY - set(e)})
    checks = {
        f"object is {body.get('object')!r}": body.get("object") == "list",
        f"entries carry {', '.join(extra)}": not extra,
        f"entries lack {', '.join(lacking)}": not lacking,
        'an entry\'s object is not "model"': all(e.get("object") == "model" for e in entries),
    }
    return _problems(checks, "as documented")


def catalog_listed(listed: Iterable[str]) -> str:
    """Whether every catalog model not retired is listed, else which are not."""
    missing = [i.id for i in unlisted_models(set(listed))]
    if not missing:
        return "every catalog model not retired is listed"
    return f"{len(missing)} not listed: {', '.join(missing)}"


def not_in_catalog(listed: Iterable[str]) -> str:
    """Listed IDs the catalog does not know (LoRA adapters aside), or ``none``."""
    unknown = sorted(i for i in listed if model_info(i) is None and not is_lora_artifact(i))
    return ", ".join(unknown) or "none"


def retired_listed(listed: Iterable[str]) -> str:
    """Listed IDs the catalog calls retired, or ``none``."""
    infos = ((i, model_info(i)) for i in listed)
    return (
        ", ".join(sorted(i for i, info in infos if info and info.lifecycle is Lifecycle.RETIRED))
        or "none"
    )


def chat_shape(body: Mapping[str, Any], usage: Mapping[str, Any]) -> str:
    """``as documented``, or how a chat answer's shape differs (§4)."""
    choices = _list(body.get("choices"))
    choice = _dict(choices[0] if choices else None)
    message = _dict(choice.get("message"))
    checks = {
        f"object {body.get('object')!r}": body.get("object") == "chat.completion",
        "not one choice": len(choices) == 1,
        "no assistant message": message.get("role") == "assistant",
        "no content field": "content" in message,
        "no finish_reason": bool(choice.get("finish_reason")),
    }
    wanted = ("prompt_tokens", "completion_tokens", "total_tokens")
    checks |= {f"usage lacks {k}": isinstance(usage.get(k), int) for k in wanted}
    return _problems(checks, "as documented")


def reasoning_field(carrier: Mapping[str, Any], where: str = "message") -> str:
    """Which field carries reasoning text (``message.reasoning``), or ``no reasoning text``."""
    names = [n for n in _REASONING if isinstance(carrier.get(n), str) and carrier[n]]
    return " and ".join(f"{where}.{n}" for n in names) or "no reasoning text"


def plain_reasoning(message: Mapping[str, Any]) -> str:
    """A non-reasoning model's reasoning field: ``message.reasoning: null`` as in §4."""
    if reasoning_field(message) != "no reasoning text":
        return "reasoning text present"
    present = [n for n in _REASONING if n in message]
    return " and ".join(f"message.{n}: null" for n in present) or "no reasoning field"


def first_chunk(deltas: Sequence[Mapping[str, Any]]) -> str:
    """``role only`` when the first delta carries nothing but the role (§10)."""
    if not deltas:
        return "no chunks"
    carried = sorted(k for k, v in deltas[0].items() if k != "role" and v not in (None, "", []))
    return f"carries {', '.join(carried)}" if carried else "role only"


def usage_place(chunks: Sequence[Mapping[str, Any]]) -> str:
    """Where a stream's usage came: ``final chunk with choices [] and usage`` (§4)."""
    carrying = [i for i, c in enumerate(chunks) if isinstance(c.get("usage"), dict)]
    if not carrying:
        return "no usage chunk"
    last = chunks[carrying[-1]]
    if last.get("choices"):
        return "usage on a chunk with choices"
    if carrying[-1] != len(chunks) - 1:
        return "usage chunk not last"
    return "final chunk with choices [] and usage"


def stream_end(events: Sequence[str]) -> str:
    """``data: [DONE]`` when the stream ends with it."""
    return "data: [DONE]" if events[-1:] == ["[DONE]"] else "no [DONE]"


def framing(kinds: Iterable[str]) -> str:
    """``data: lines only``, or the other SSE line kinds that came (comments, ``event:`` ...)."""
    others = sorted(set(kinds) - {"data"})
    return f"data: and {', '.join(others)}" if others else "data: lines only"


def reasoning_deltas(deltas: Iterable[Mapping[str, Any]]) -> str:
    """Which delta field carried streamed reasoning (``delta.reasoning``)."""
    streamed = sorted({n for d in deltas for n in _REASONING if d.get(n)})
    return " and ".join(f"delta.{n}" for n in streamed) or "no reasoning deltas"


def tool_shape(calls: object, name: str) -> str:
    """``OpenAI shape`` when every call has an id, type function, ``name`` and JSON arguments."""
    if not isinstance(calls, list) or not calls:
        return "no tool_calls"
    problems = []
    for entry in calls:
        call = _dict(entry)
        function = _dict(call.get("function"))
        if not (isinstance(call.get("id"), str) and call["id"]):
            problems.append("a call without an id")
        if call.get("type") != "function":
            problems.append(f"type {call.get('type')!r}")
        if function.get("name") != name:
            problems.append("not the named function")
        elif not isinstance(json_value(function.get("arguments")), dict):
            problems.append("arguments are not JSON object text")
    return "; ".join(dict.fromkeys(problems)) or "OpenAI shape"


def id_style(call_id: object, shape: str) -> str:
    """A tool-call id's word prefix (``call_…``; the rest is never shown), or its ``shape``."""
    if not isinstance(call_id, str) or not call_id:
        return "no id"
    prefix = re.match(r"[A-Za-z]+[_-](?:[A-Za-z]+[_-])*", call_id)
    return f"{prefix.group(0)}…" if prefix else f"{shape} (no prefix)"


def fragments(pieces: Sequence[Mapping[str, Any]]) -> str:
    """How a streamed call arrived: id and name first, arguments in several deltas (OpenAI)."""
    if not pieces:
        return "no tool-call deltas"
    head = pieces[0]
    if not (head.get("id") and (head.get("function") or {}).get("name")):
        return "id or name not in the first delta"
    parts = [p for p in pieces if (p.get("function") or {}).get("arguments")]
    return (
        "id and name first, arguments in fragments" if len(parts) > 1 else "arguments in one piece"
    )


def json_value(text: object) -> Any:
    """``text`` parsed as JSON, or ``None``."""
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def json_answer(content: object, keys: frozenset[str] | None = None) -> str:
    """``a JSON object``, or with ``keys`` ``JSON matching the schema`` (string values)."""
    value = json_value(content)
    if value is None:
        return "not JSON"
    if not isinstance(value, dict):
        return "JSON, not an object"
    if keys is None:
        return "a JSON object"
    fits = set(value) == keys and all(isinstance(value[k], str) for k in keys)
    return "JSON matching the schema" if fits else "JSON not matching the schema"


def logprobs(found: object) -> str:
    """``logprobs returned`` when ``choices[0].logprobs.content`` is a list."""
    if found is None:
        return "logprobs: null"
    if isinstance(found, dict) and isinstance(found.get("content"), list):
        return "logprobs returned"
    return "logprobs in another shape"
