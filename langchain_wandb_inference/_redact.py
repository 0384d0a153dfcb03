"""Keeping secrets out of what the package hands back: one scrubber, one placeholder.

Every place that shows or keeps text the service or the transport produced goes through
:class:`Scrubber`: typed errors (:func:`redact_exception`), the CLI before it prints, and
recorded cassettes (``testing.recording``).  What it replaces by :data:`REDACTED`:

* **credentials** — the API key (an ``Authorization`` value and the token after
  ``Bearer``), other credential headers, cookies: wherever they appear, even inside
  other text, since a key is never part of a legitimate word;
* **identities** — the team/project (``OpenAI-Project``) and organization: only as a
  whole value, never inside other text, so that an entity named ``team`` does not
  turn "my team" into "my [REDACTED]" (and a replay can still match);
* **key-shaped strings** — bearer tokens, W&B keys (40 hex digits, or ``wandb_v1-…``),
  OpenAI-style ``sk-`` keys, found by pattern even when nobody said they were secret.

Why errors are redacted *in place*: the ``openai`` SDK's exception, its
``response.request``, and the httpx exceptions in ``__cause__``/``__context__`` all share
one request object.  Redacting that object once, where the transport error is caught,
cleans every exception of the chain — tracebacks, ``repr``, a tracer's ``run.error`` —
where copies would leave the original one level down.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

REDACTED = "[REDACTED]"

CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie"}
)
"""Headers whose values are credentials: replaced whole wherever they are kept."""
IDENTITY_HEADERS = frozenset({"openai-project", "openai-organization"})
"""Headers naming the team/project or organization: replaced whole wherever they are kept."""

KEY_PATTERNS = (
    # A token after "Bearer": 8+ characters with a digit, so that W&B's own text
    # "Missing bearer authentication in header" survives.
    re.compile(r"(?i)(?<=bearer )(?=[^\s\"',;]*\d)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{40}(?![0-9a-fA-F])"),
    re.compile(r"\b(?:wandb_v\d+|local)-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
)
"""Strings that look like credentials wherever they appear."""

_MIN_SECRET = 8
"""Shorter "credentials" are left alone: no real key is that short, and replacing a
short string would garble ordinary words."""
_WORD = r"A-Za-z0-9_\-./:"


class Scrubber:
    """Replaces known secrets and key-shaped strings in text, values and headers."""

    def __init__(self, credentials: Iterable[str] = (), identities: Iterable[str] = ()) -> None:
        found = {s.strip() for s in credentials if s and len(s.strip()) >= _MIN_SECRET}
        self.credentials = tuple(sorted(found, key=len, reverse=True))
        self.identities = tuple(sorted({s for s in identities if s and s.strip()}, key=len))
        alternatives = [re.escape(s) for s in reversed(self.identities)]
        self._identity = (
            re.compile(rf"(?<![{_WORD}])(?:{'|'.join(alternatives)})(?![{_WORD}])")
            if alternatives
            else None
        )

    @classmethod
    def from_headers(cls, headers: Iterable[Any], *, identities: Iterable[str] = ()) -> Scrubber:
        """A scrubber for the secrets the given headers carry (plus ``identities``)."""
        credentials: list[str] = []
        named = list(identities)
        for collection in headers:
            for name, value in _header_items(collection):
                lowered = name.lower()
                if lowered in CREDENTIAL_HEADERS:
                    credentials.append(value)
                    credentials.append(value.partition(" ")[2])
                elif lowered in IDENTITY_HEADERS:
                    named.append(value)
        return cls(credentials, named)

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by :data:`REDACTED`."""
        for secret in self.credentials:
            text = text.replace(secret, REDACTED)
        if self._identity is not None:
            text = self._identity.sub(REDACTED, text)
        for pattern in KEY_PATTERNS:
            text = pattern.sub(REDACTED, text)
        return text

    def value(self, value: Any) -> Any:
        """A copy of ``value`` (str, bytes, mappings, lists, tuples) with secrets replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace")).encode() if value else value
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.value(v) for v in value)
        return value

    def find(self, text: str) -> list[str]:
        """The secrets and key-shaped strings ``text`` contains (for cassette scans)."""
        found = [s for s in self.credentials if s in text]
        if self._identity is not None:
            found += [m.group(0) for m in self._identity.finditer(text)]
        return found + [m.group(0) for p in KEY_PATTERNS for m in p.finditer(text)]

    def headers(self, headers: Any) -> None:
        """Redact an httpx ``Headers`` (or a plain dict of headers) in place."""
        for name, value in list(_header_items(headers)):
            lowered = name.lower()
            if lowered in CREDENTIAL_HEADERS or lowered in IDENTITY_HEADERS:
                headers[name] = REDACTED
            elif (scrubbed := self.text(value)) != value:
                headers[name] = scrubbed


def _header_items(headers: Any) -> Iterator[tuple[str, str]]:
    """(name, value) pairs of an httpx ``Headers``, a mapping, or nothing readable."""
    try:
        items = headers.multi_items() if hasattr(headers, "multi_items") else headers.items()
        pairs = list(items)
    except Exception:  # not headers at all
        return
    for name, value in pairs:
        if isinstance(name, str) and isinstance(value, str):
            yield name, value


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception in its ``__cause__``/``__context__`` chain, once each."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def _attribute(owner: Any, name: str) -> Any:
    """``owner.<name>``, or ``None`` (httpx raises RuntimeError for an unset ``request``)."""
    try:
        return getattr(owner, name, None)
    except Exception:
        return None


def redact_exception(exc: BaseException, *, identities: Iterable[str] = ()) -> None:
    """Remove every secret from ``exc`` and its whole chain, in place (see the module doc).

    The secrets are those the chain's requests carried (their credential and project
    headers) plus ``identities``.  Redacted: request and response headers, the
    request URL, the response body, and each exception's ``args``, ``message`` and
    ``body``.  Idempotent.
    """
    chain = list(_chain(exc))
    found = [m for e in chain for m in (_attribute(e, "request"), _attribute(e, "response"))]
    found += [_attribute(m, "request") for m in found if hasattr(m, "status_code")]
    messages = list({id(m): m for m in found if m is not None}.values())
    scrubber = Scrubber.from_headers(
        [getattr(m, "headers", None) for m in messages], identities=identities
    )
    for message in messages:
        _redact_message(message, scrubber)
    for error in chain:
        error.args = tuple(scrubber.value(a) if isinstance(a, str) else a for a in error.args)
        for name in ("message", "body"):
            if isinstance(getattr(error, name, None), str | Mapping | list):
                setattr(error, name, scrubber.value(getattr(error, name)))


def _redact_message(message: Any, scrubber: Scrubber) -> None:
    """Redact one request or response in place: headers, URL, body already read."""
    headers = getattr(message, "headers", None)
    if headers is not None:
        with contextlib.suppress(Exception):  # immutable headers: nothing we can change
            scrubber.headers(headers)
    url = getattr(message, "url", None)
    if url is not None and (clean := scrubber.text(str(url))) != str(url):
        with contextlib.suppress(Exception):
            message.url = type(url)(clean)
    content = getattr(message, "_content", None)  # the body, once read (httpx and httpx2)
    if isinstance(content, bytes) and (clean_body := scrubber.value(content)) != content:
        message._content = clean_body
        vars(message).pop("_text", None)  # the decoded text, cached by ``.text``
