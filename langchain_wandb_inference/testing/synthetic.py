"""The emulator's default answers: a deterministic synthetic ``Backend``.

Tests default to ``SyntheticBackend`` (the interface it implements lives in
``testing.backend``; ``local_model.LocalModelBackend`` is the real-model alternative).

``SyntheticBackend`` never pretends to be a language model: text answers start with
``[emulator]``.  It does honour the request's *shape*, because that is what client
code and LangChain's standard tests check:

- tool calls when ``tool_choice`` forces one, or when tools are offered (``auto`` or
  absent) and the last message is from the user; after a ``tool`` message it answers
  in text quoting the tool result.  Arguments are generated from the JSON schema;
- ``response_format``: JSON valid against a ``json_schema``, or a JSON object whose
  keys are those the prompt names (``json_object``);
- reasoning text when the server says this model reasons for this request;
- ``stop`` (content cut at the first stop string) and ``max_tokens`` /
  ``max_completion_tokens`` (reasoning, then content, cut to the budget by
  ``count_tokens``'s tokenizer, ``finish_reason="length"``).  Tool-call arguments are
  never cut.

Sampling parameters (``temperature``, ``seed``, ...) are ignored: the same request
always gets the same answer.

Strings in generated JSON come from the last user message, in order: quoted spans
first (``'你好'``, ``"x"``, backticks), then capitalised phrases that do not start a
sentence ("San Francisco, CA"); when those run out, ``"[emulator] <property>"``.
Integers and numbers take the numbers in the message in order, clamped to the
schema's bounds, else 0 (clamped).  Unsupported schema keywords (``pattern``,
``multipleOf``, ``uniqueItems`` beyond one item, ...) are not enforced.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_wandb_inference.testing.backend import (
    TOKEN,
    ChatRequest,
    Completion,
    ToolCall,
    message_text,
)


def _truncate(text: str, budget: int) -> tuple[str, int]:
    """Cut ``text`` to ``budget`` tokens; returns the text and the tokens it used."""
    used = 0
    for used, match in enumerate(TOKEN.finditer(text), 1):
        if used == budget:
            return text[: match.end()], used
    return text, used


# --- synthetic backend ----------------------------------------------------------------


class SyntheticBackend:
    """Deterministic, plainly synthetic answers shaped like the request asks."""

    def complete(self, request: ChatRequest) -> Completion:
        """Answer with a tool call, JSON or marked text, per the module docstring."""
        body = request.body
        messages: Sequence[Mapping[str, Any]] = body["messages"]
        prompt = _last_user_text(messages)
        tool = _chosen_tool(body, messages, prompt)
        if tool is not None:
            args = _generate(tool.get("parameters") or {"type": "object"}, _Hints(prompt))
            call = ToolCall(
                _call_id(messages, tool["name"]),
                tool["name"],
                json.dumps(args, ensure_ascii=False),
            )
            plan = f"call the tool {tool['name']}"
            return Completion(None, _reasoning(request, plan), (call,), "tool_calls")
        content, plan = _answer(body, messages, prompt)
        reasoning = _reasoning(request, plan)
        return _limit(body, content, reasoning)


def _reasoning(request: ChatRequest, plan: str) -> str | None:
    if not request.reasoning:
        return None
    count = len(request.body["messages"])
    return f"[emulator] Synthetic reasoning over {count} message(s): I will {plan}."


def _limit(body: Mapping[str, Any], content: str, reasoning: str | None) -> Completion:
    for stop in _stops(body):
        cut = content.find(stop)
        if cut >= 0:
            content = content[:cut]
    budget = body.get("max_completion_tokens") or body.get("max_tokens")
    if budget is None:
        return Completion(content, reasoning)
    full = (reasoning, content)
    if reasoning is not None:
        reasoning, used = _truncate(reasoning, budget)
        budget -= used
    content = _truncate(content, budget)[0] if budget > 0 else ""
    return Completion(
        content, reasoning, finish_reason="stop" if full == (reasoning, content) else "length"
    )


def _stops(body: Mapping[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop or () if s]


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return message_text(message)
    return ""


def _chosen_tool(
    body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], prompt: str
) -> Mapping[str, Any] | None:
    tools: list[Mapping[str, Any]] = [t["function"] for t in body.get("tools") or ()]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, Mapping):
        name: str = choice["function"]["name"]
        return next(t for t in tools if t["name"] == name)
    if choice == "auto" and messages[-1]["role"] != "user":
        return None
    return next((t for t in tools if t["name"] in prompt), tools[0])


def _call_id(messages: Sequence[Mapping[str, Any]], name: str) -> str:
    """Deterministic, so cassettes recorded twice match and follow-ups can be replayed."""
    digest = hashlib.blake2b(json.dumps([messages, name], sort_keys=True).encode(), digest_size=12)
    return "call_" + digest.hexdigest()


def _answer(
    body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], prompt: str
) -> tuple[str, str]:
    """Return the content and a one-line plan for the reasoning text."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"].get("schema") or {"type": "object"}
        return json.dumps(_generate(schema, _Hints(prompt)), ensure_ascii=False), "answer in JSON"
    if fmt.get("type") == "json_object":
        instructions = " ".join(message_text(m) for m in messages if m["role"] == "system")
        keys = _named_keys(f"{instructions} {prompt}") or ["answer"]
        obj = {key: f"[emulator] {key}" for key in keys}
        return json.dumps(obj, ensure_ascii=False), "answer with a JSON object"
    last = messages[-1]
    if last["role"] == "tool":
        name = _tool_name(messages, last.get("tool_call_id"))
        return f"[emulator] The tool {name} returned: {message_text(last)}", "quote the tool result"
    snippet = prompt if len(prompt) <= 200 else prompt[:200] + "..."
    text = f"[emulator] Synthetic answer to a {len(messages)}-message chat."
    text += f' Last user message: "{snippet}"'
    return text, "answer in text"


def _tool_name(messages: Sequence[Mapping[str, Any]], call_id: object) -> str:
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            if call.get("id") == call_id:
                return str(call["function"]["name"])
    return "tool"


_QUOTED_KEY = re.compile(r"(?<!\w)['\"`]([A-Za-z_][\w-]*)['\"`](?!\w)")
_LISTED_KEYS = re.compile(
    r"\b(?:keys?|fields?|properties)\b\s*(?:named|called|:)?\s*"
    r"([A-Za-z_]\w*(?:\s*(?:,|\band\b|\bor\b)\s*[A-Za-z_]\w*)*)"
)


def _named_keys(text: str) -> list[str]:
    """Keys a prompt asks for: quoted identifiers, or a list after "keys"/"fields"."""
    keys = _QUOTED_KEY.findall(text)
    if not keys and (match := _LISTED_KEYS.search(text)):
        keys = [k for k in re.split(r"\s*(?:,|\band\b|\bor\b)\s*", match.group(1)) if k]
    return list(dict.fromkeys(keys))


# --- JSON from a JSON schema ---------------------------------------------------------

_QUOTED = re.compile(r"(?<!\w)(?:'([^']+)'|\"([^\"]+)\"|`([^`]+)`|“([^”]+)”|「([^」]+)」)(?!\w)")
_CAPITALISED = re.compile(r"\b[A-Z][\w'-]*(?:,? [A-Z][\w'-]*)*")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_MAX_DEPTH = 12
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "emulator@example.com",
    "uri": "https://example.com/emulator",
    "url": "https://example.com/emulator",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
}


class _Hints:
    """Values taken from the prompt, consumed in order as the schema asks for them."""

    def __init__(self, prompt: str) -> None:
        self.prompt = prompt
        quoted = ["".join(groups) for groups in _QUOTED.findall(prompt)]
        self.strings = deque(quoted + _capitalised_phrases(prompt))
        self.numbers = deque(float(n) for n in _NUMBER.findall(prompt))

    def string(self, name: str) -> str:
        return self.strings.popleft() if self.strings else f"[emulator] {name}"


def _capitalised_phrases(text: str) -> list[str]:
    phrases = []
    for match in _CAPITALISED.finditer(text):
        words = match.group().split(" ")
        before = text[: match.start()].rstrip()
        if not before or before[-1] in ".!?:\n":
            words = words[1:]  # a sentence's first word says nothing
        phrase = " ".join(words).rstrip(",")
        if phrase and phrase != "I":
            phrases.append(phrase)
    return phrases


def _generate(schema: Mapping[str, Any], hints: _Hints, name: str = "value") -> Any:
    return _Generator(schema, hints).value(schema, name, 0)


class _Generator:
    def __init__(self, root: Mapping[str, Any], hints: _Hints) -> None:
        self.root = root
        self.hints = hints

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            node: Any = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")] if part else node
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged["properties"] = {
                    **merged.get("properties", {}),
                    **part.get("properties", {}),
                }
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged.update({k: v for k, v in part.items() if k not in merged})
            schema = merged
        return schema

    def value(self, schema: Mapping[str, Any], name: str, depth: int) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            said = self.hints.prompt.lower()
            return next(
                (v for v in schema["enum"] if re.search(rf"\b{re.escape(str(v).lower())}\b", said)),
                schema["enum"][0],
            )
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                nulls = [o for o in options if o.get("type") == "null"]
                real = [o for o in options if o.get("type") != "null"]
                # Past the depth limit, null ends a recursive schema (``Node | None``).
                chosen = (nulls if depth >= _MAX_DEPTH and nulls else real or options)[0]
                return self.value(chosen, name, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind in ("integer", "number"):
            return self.number(schema, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        required = set(schema.get("required", ()))
        result = {}
        for prop, sub in schema.get("properties", {}).items():
            if prop not in required and ("default" in sub or depth >= _MAX_DEPTH):
                if "default" in sub:
                    result[prop] = sub["default"]
                continue
            result[prop] = self.value(sub, prop, depth + 1)
        return result

    def array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        result = [self.value(s, name, depth + 1) for s in schema.get("prefixItems", ())]
        items = schema.get("items", {})
        if items is False:
            return result
        count = max(schema.get("minItems", 0), 0 if depth >= _MAX_DEPTH else 1)
        count = min(count, schema.get("maxItems", count))
        while len(result) < count:
            result.append(self.value(items if isinstance(items, Mapping) else {}, name, depth + 1))
        return result

    def number(self, schema: Mapping[str, Any], integer: bool) -> int | float:
        value = self.hints.numbers.popleft() if self.hints.numbers else 0.0
        step = 1.0 if integer else 1e-6
        low, high = -math.inf, math.inf
        if isinstance(schema.get("minimum"), (int, float)):
            low = schema["minimum"]
        if isinstance(schema.get("exclusiveMinimum"), (int, float)):
            low = max(low, schema["exclusiveMinimum"] + step)
        if isinstance(schema.get("maximum"), (int, float)):
            high = schema["maximum"]
        if isinstance(schema.get("exclusiveMaximum"), (int, float)):
            high = min(high, schema["exclusiveMaximum"] - step)
        value = float(min(max(value, low), high))
        if integer:
            value = float(round(value))
            if value < low:
                value = math.ceil(low)
            elif value > high:
                value = math.floor(high)
        return int(value) if integer or float(value).is_integer() else value

    def string(self, schema: Mapping[str, Any], name: str) -> str:
        text = _FORMATS.get(schema.get("format", "")) or self.hints.string(name)
        text = text.ljust(schema.get("minLength", 0), "x")
        return text[: schema.get("maxLength", len(text))]
