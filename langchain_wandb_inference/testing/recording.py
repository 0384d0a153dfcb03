"""Recorded-response testing: a VCR configuration that is safe to commit.

Cassettes must never hold what identifies or authorizes you, however the client was
given it (``ChatWBInference(api_key=..., project=...)``, environment variables, a
header of your own).  So the secrets are read from what the recorded client actually
sent: each request's ``Authorization``, ``OpenAI-Project`` and other credential
headers (``_redact.Scrubber.from_headers``).  Those values are then replaced by
``[REDACTED]`` — by the package's one scrubber, ``_redact.Scrubber``, with its key
patterns — in that request's URI (query string included) and body, in every header
kept, and in its response's headers (echoes, ``www-authenticate``, ...) and body.
The project is replaced only as a whole value, never inside other words.  On top,
requests lose ``Authorization``, ``OpenAI-Project``, cookies, user agent and the
SDK's ``x-stainless-*`` fingerprint; responses lose ``Set-Cookie`` and request ids.

vcrpy's ``before_record_response`` is not given the request.  It does not need to
be: ``vcr.cassette.Cassette.append`` filters the request (``before_record_request``)
before its response, so the secrets a request carried are known when its response
is scrubbed.  They are kept per configuration and only ever added to, so requests
recorded concurrently (``abatch``) cannot race.

Requests are matched on method, path and JSON body (tool-call ids renumbered) — not
host — so a cassette recorded against the live service or the emulator (on whatever
port) replays against either, with no key or environment variable set: vcrpy passes a
replayed request through the same request filter before matching it.

Every cassette opens with a ``provenance`` line saying where its answers came from,
read from the URLs actually recorded: 127.0.0.1, localhost or ::1 is this package's
emulator; anything else is the live service at that base URL.  Emulated answers are
synthetic and must never pass for live ones.

Use :func:`vcr_config` with pytest-recording's ``vcr_config`` fixture, or the
``wb_vcr_config`` fixture of the pytest plugin.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from langchain_wandb_inference._redact import Scrubber

#: Headers removed from recorded requests.
REQUEST_HEADERS_SCRUBBED = (
    "authorization",
    "proxy-authorization",
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

EMULATOR_PROVENANCE = (
    "Recorded against the langchain-wandb-inference emulator (a local stand-in for the "
    "documented W&B Inference API). Answers are SYNTHETIC, not from the live service."
)
LIVE_PROVENANCE = "Recorded against the live W&B Inference API ({base_url})."
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_ROUTES = ("/chat/completions", "/models")


class CassetteScrubber:
    """The VCR hooks of one configuration, and the secrets its recorded requests carried.

    ``credentials`` are scrubbed from the start (values the requests may not carry,
    e.g. a key in the environment that the client under test was not given).
    """

    def __init__(self, credentials: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._credentials = {c for c in credentials if c}
        self._identities: set[str] = set()
        self._scrubber = Scrubber(self._credentials)

    def __deepcopy__(self, memo: dict[int, Any]) -> CassetteScrubber:
        """Itself: pytest-recording deep-copies the configuration, whose state is shared."""
        return self

    @property
    def scrubber(self) -> Scrubber:
        """The scrubber for every secret seen so far."""
        with self._lock:
            return self._scrubber

    def learn(self, headers: Any) -> Scrubber:
        """Add the secrets ``headers`` carry; returns the scrubber that knows them all."""
        seen = Scrubber.from_headers([headers])
        with self._lock:
            if not (
                self._credentials.issuperset(seen.credentials)
                and self._identities.issuperset(seen.identities)
            ):
                self._credentials.update(seen.credentials)
                self._identities.update(seen.identities)
                self._scrubber = Scrubber(self._credentials, self._identities)
            return self._scrubber

    def before_record_request(self, request: Any) -> Any:
        """Read the request's secrets, drop its identifying headers, scrub the rest."""
        from vcr import filters  # imported late: the runtime package does not need vcrpy

        scrubber = self.learn(request.headers)
        dropped = [
            name
            for name in request.headers
            if name.lower() in REQUEST_HEADERS_SCRUBBED
            or name.lower().startswith(_FINGERPRINT_PREFIX)
        ]
        request = filters.replace_headers(request, [(name, None) for name in dropped])
        for name, value in list(request.headers.items()):
            request.headers[name] = scrubber.text(value)
        request.uri = scrubber.text(request.uri)
        request.body = scrubber.value(request.body)
        return request

    def before_record_response(self, response: dict[str, Any]) -> dict[str, Any]:
        """Scrub a response with every secret its request (and earlier ones) carried."""
        scrubber = self.scrubber
        headers = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in RESPONSE_HEADERS_SCRUBBED:
                del headers[name]
            else:
                headers[name] = scrubber.value(headers[name])
        body = response.get("body") or {}
        if "string" in body:
            body["string"] = scrubber.value(body["string"])
        return response


def provenance(cassette_dict: dict[str, Any]) -> str:
    """Where a cassette's answers came from, read from the URLs it recorded."""
    urls = [i["request"]["uri"] for i in cassette_dict.get("interactions") or ()]
    live = sorted({_base_url(url) for url in urls if urlsplit(url).hostname not in _LOOPBACK})
    if live:
        return LIVE_PROVENANCE.format(base_url=", ".join(live))
    return EMULATOR_PROVENANCE if urls else "Nothing was recorded."


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path
    for route in _ROUTES:
        path = path.removesuffix(route)
    return f"{parts.scheme}://{parts.netloc}{path}"


class ProvenanceSerializer:
    """vcrpy's safe YAML serializer, with a ``provenance`` line at the top of the file."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        """Write the provenance first (see :func:`provenance`), so a reader sees it first."""
        from vcr.serializers import yamlserializer  # imported late: pytest rewrites vcr's asserts

        text: str = yamlserializer.serialize(cassette_dict)
        header: str = yamlserializer.serialize({"provenance": provenance(cassette_dict)})
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


SERIALIZER_NAME = "yaml"
"""vcrpy's own name for YAML, taken over on the VCR instance :func:`register` is given.

pytest-recording names cassette files after the serializer (``<test>.<serializer>``)
when it deletes them for ``--record-mode=rewrite``; under any other name it deleted
``<test>.wb-yaml`` while cassettes are ``<test>.yaml``, so "rewrite" replayed the old
cassette instead of recording a new one."""
MATCHER_NAME = "wb_body"


def _canonical(body: Any) -> Any:
    """A request body with tool-call ids renumbered, tool descriptions dedented.

    Tool-call ids are opaque tokens that callers often mint at random (LangChain's
    few-shot helpers use ``uuid4``); renumbering keeps which call a tool result answers
    while letting a replay match its recording.  A tool's description is often its
    function's docstring, which Python 3.13 dedents at compile time and earlier versions
    keep indented: ``inspect.cleandoc`` makes a cassette recorded on one replay on the
    other.  Non-JSON bodies compare as they are.
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

    for tool in data.get("tools") or [] if isinstance(data, dict) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("description"), str):
            function["description"] = inspect.cleandoc(function["description"])
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
    """VCR matcher: equal JSON bodies, up to tool-call ids and docstring indentation."""
    if _canonical(recorded.body) != _canonical(live.body):
        msg = "request bodies differ (beyond tool-call ids)"
        raise AssertionError(msg)


def register(vcr: Any) -> None:
    """Register this module's serializer and body matcher on a VCR instance."""
    vcr.register_serializer(SERIALIZER_NAME, ProvenanceSerializer())
    vcr.register_matcher(MATCHER_NAME, match_body)


def vcr_config(*, credentials: Iterable[str] = ()) -> dict[str, Any]:
    """VCR settings: scrubbed on record, matched on method/path/body, safe to commit.

    The secrets are read from the recorded requests themselves (module docstring);
    ``credentials`` adds values to scrub that the requests may not carry.  Each call
    has its own scrubbing state.  Call :func:`register` once per VCR instance (the
    pytest plugin does it).
    """
    hooks = CassetteScrubber(credentials)
    return {
        "serializer": SERIALIZER_NAME,
        "path_transformer": lambda path: path + ".yaml" if not path.endswith(".yaml") else path,
        "before_record_request": hooks.before_record_request,
        "before_record_response": hooks.before_record_response,
        "match_on": ("method", "path", MATCHER_NAME),
        "decode_compressed_response": True,
        # Identical requests replay their recorded answers in order (a warm cache
        # answers differently from a cold one); a test that loops over the same
        # request (a benchmark) opts in with @pytest.mark.vcr(allow_playback_repeats=True).
        "allow_playback_repeats": False,
    }
