"""Recorded-response testing: a VCR configuration that is safe to commit.

Cassettes must never hold what identifies or authorizes you.  On record, requests
lose ``Authorization``, ``OpenAI-Project``, cookies, user agent and the SDK's
``x-stainless-*`` fingerprint headers; responses lose ``Set-Cookie`` and request
ids; and any key-like string left in a body is replaced.  Requests are matched on
method, path and JSON body (tool-call ids renumbered) — not host — so a
cassette recorded against the live service or the emulator (on whatever port)
replays against either.

Every cassette opens with a ``provenance`` line saying where its answers came from:
the live W&B service or this package's emulator.  Emulated answers are synthetic
and must never pass for live ones.

Use :func:`vcr_config` with pytest-recording's ``vcr_config`` fixture, or the
``wb_vcr_config`` fixture of the pytest plugin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

#: Headers removed from recorded requests.
REQUEST_HEADERS_SCRUBBED = (
    "authorization",
    "openai-project",
    "openai-organization",
    "cookie",
    "user-agent",
    "api-key",
    "x-api-key",
)
#: Headers removed from recorded responses.
RESPONSE_HEADERS_SCRUBBED = ("set-cookie", "x-request-id", "cf-ray", "openai-organization")
_FINGERPRINT_PREFIX = "x-stainless-"

#: Strings that look like credentials: bearer tokens, W&B keys (40 hex, or the
#: newer prefixed form), OpenAI-style ``sk-`` keys.
SECRET_PATTERNS = (
    re.compile(r"Bearer\s+[A-Za-z0-9._\-]{8,}"),
    re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{40}(?![0-9a-fA-F])"),
    re.compile(r"\b(?:wandb_v\d+|local)-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
)
REDACTED = "<redacted>"

EMULATOR_PROVENANCE = (
    "Recorded against the langchain-wandb-inference emulator (a local stand-in for the "
    "documented W&B Inference API). Answers are SYNTHETIC, not from the live service."
)
LIVE_PROVENANCE = "Recorded against the live W&B Inference API ({base_url})."


def find_secrets(text: str, extra: Iterable[str] = ()) -> list[str]:
    """Key-like substrings of ``text`` (plus any of the exact ``extra`` values)."""
    found = [m.group(0) for pattern in SECRET_PATTERNS for m in pattern.finditer(text)]
    return found + [value for value in extra if value and value in text]


def _redact(text: str, extra: Iterable[str]) -> str:
    for secret in find_secrets(text, extra):
        text = text.replace(secret, REDACTED)
    return text


def _scrub_body(body: Any, extra: Iterable[str]) -> Any:
    if isinstance(body, bytes):
        return _redact(body.decode("utf-8", "replace"), extra).encode("utf-8")
    if isinstance(body, str):
        return _redact(body, extra)
    return body


def scrubber(
    extra_secrets: Iterable[str] = (),
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``before_record_request`` and ``before_record_response`` hooks for VCR.

    ``extra_secrets`` are exact values (your key, your ``team/project``) to redact
    wherever they appear, on top of the patterns.
    """
    secrets = tuple(s for s in extra_secrets if s)

    def scrub_request(request: Any) -> Any:
        for name in list(request.headers):
            lowered = name.lower()
            if lowered in REQUEST_HEADERS_SCRUBBED or lowered.startswith(_FINGERPRINT_PREFIX):
                del request.headers[name]
        request.body = _scrub_body(request.body, secrets)
        return request

    def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
        headers = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in RESPONSE_HEADERS_SCRUBBED:
                del headers[name]
        body = response.get("body") or {}
        if "string" in body:
            body["string"] = _scrub_body(body["string"], secrets)
        return response

    return scrub_request, scrub_response


class ProvenanceSerializer:
    """vcrpy's safe YAML serializer, with a ``provenance`` line at the top of the file."""

    def __init__(self, provenance: str) -> None:
        self.provenance = provenance

    def serialize(self, cassette_dict: dict[str, Any]) -> str:
        """Write ``provenance`` first so a reader sees it before any answer."""
        from vcr.serializers import yamlserializer  # imported late: pytest rewrites vcr's asserts

        text: str = yamlserializer.serialize(cassette_dict)
        header: str = yamlserializer.serialize({"provenance": self.provenance})
        return header + text

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        """Read a cassette (the provenance line is ignored by vcrpy)."""
        from vcr.serializers import yamlserializer

        data: dict[str, Any] = yamlserializer.deserialize(cassette_string)
        return data


def provenance_of(cassette_text: str) -> str | None:
    """The provenance line a cassette was written with (``None``: it has none)."""
    from vcr.serializers import yamlserializer

    data = yamlserializer.deserialize(cassette_text)
    value = data.get("provenance") if isinstance(data, dict) else None
    return str(value) if value is not None else None


SERIALIZER_NAME = "wb-yaml"
MATCHER_NAME = "wb_body"


def _canonical(body: Any) -> Any:
    """A request body with tool-call ids renumbered in order of appearance.

    Tool-call ids are opaque tokens that callers often mint at random (LangChain's
    few-shot helpers use ``uuid4``); renumbering keeps which call a tool result answers
    while letting a replay match its recording.  Non-JSON bodies compare as they are.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        data = json.loads(body) if isinstance(body, str) and body else body
    except ValueError:
        return body
    ids: dict[str, str] = {}

    def rename(value: Any) -> Any:
        return ids.setdefault(value, f"id-{len(ids)}") if isinstance(value, str) else value

    for message in data.get("messages", []) if isinstance(data, dict) else []:
        if not isinstance(message, dict):
            continue
        if "tool_call_id" in message:
            message["tool_call_id"] = rename(message["tool_call_id"])
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and "id" in call:
                call["id"] = rename(call["id"])
    return data


def match_body(recorded: Any, live: Any) -> None:
    """VCR matcher: equal JSON bodies, up to the naming of tool-call ids."""
    if _canonical(recorded.body) != _canonical(live.body):
        msg = "request bodies differ (beyond tool-call ids)"
        raise AssertionError(msg)


def register(vcr: Any, provenance: str) -> None:
    """Register this module's serializer and body matcher on a VCR instance."""
    vcr.register_serializer(SERIALIZER_NAME, ProvenanceSerializer(provenance))
    vcr.register_matcher(MATCHER_NAME, match_body)


def vcr_config(*, extra_secrets: Iterable[str] = ()) -> dict[str, Any]:
    """VCR settings: scrubbed on record, matched on method/path/body, safe to commit.

    Call :func:`register` once per VCR instance (the pytest plugin does it).
    """
    scrub_request, scrub_response = scrubber(extra_secrets)
    return {
        "serializer": SERIALIZER_NAME,
        "path_transformer": lambda path: path + ".yaml" if not path.endswith(".yaml") else path,
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "match_on": ("method", "path", MATCHER_NAME),
        "decode_compressed_response": True,
        # Identical requests replay their recorded answers in order (a warm cache
        # answers differently from a cold one); a test that loops over the same
        # request (a benchmark) opts in with @pytest.mark.vcr(allow_playback_repeats=True).
        "allow_playback_repeats": False,
    }
