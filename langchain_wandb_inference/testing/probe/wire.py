"""The probe's raw HTTP: requests under the budget guard, and what the bytes say.

Why raw ``httpx``: the probe asks what the *service* sends (field names, SSE framing,
headers, error bodies), not how the ``openai`` SDK or LangChain read it.  Every request
a model is named in still passes the package's own :class:`Budget` guard, so a refused
reservation stops the probe before anything is sent.  Error bodies are mapped with the
package's own :func:`errors.classify`, so an observation also says how the package
would treat what came back.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from langchain_wandb_inference import errors
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.policies import Budget
from langchain_wandb_inference.policies import _pipeline as pipeline
from langchain_wandb_inference.policies._budget import BudgetGuard
from langchain_wandb_inference.policies._state import LOCAL
from langchain_wandb_inference.testing.emulator import Emulator
from langchain_wandb_inference.usage import rough_tokens

USER_AGENT = f"langchain-wandb-inference-probe/{__version__}"
"""A plain User-Agent: some CDNs in front of the service block unusual ones (§1)."""

STANDARD_HEADERS = frozenset(
    {
        "content-type", "content-length", "transfer-encoding", "content-encoding",
        "connection", "keep-alive", "date", "server", "cache-control", "vary",
        "alt-svc", "strict-transport-security", "via",
    }
)  # fmt: skip
"""Response headers every HTTP service sends: not reported as worth knowing."""
RATE_LIMIT_HEADERS = re.compile(r"^(x-)?ratelimit|^retry-after", re.IGNORECASE)


@dataclass(frozen=True)
class Service:
    """Where the probe sends requests, as whom, and whether it is the bundled emulator."""

    base_url: str
    api_key: str
    project: str | None
    timeout: float = 60.0
    emulator: Emulator | None = None
    """The bundled emulator, when it is what is probed: "offline"."""


@dataclass
class Exchange:
    """One request and its answer, as bytes and as far as they parse."""

    response: httpx2.Response

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.response.status_code

    @functools.cached_property
    def json(self) -> Any:
        """The body as JSON, or ``None`` (a stream, HTML, nothing)."""
        try:
            return json.loads(self.response.content)
        except ValueError:
            return None

    @property
    def events(self) -> list[str]:
        """The ``data:`` payloads of an SSE body, in order."""
        return [value for kind, value in sse_lines(self.response.content) if kind == "data"]

    def chunks(self) -> list[dict[str, Any]]:
        """The stream's JSON chunks (``[DONE]`` and unparseable events left out)."""
        parsed = []
        for event in self.events:
            try:
                chunk = json.loads(event)
            except ValueError:
                continue
            if isinstance(chunk, dict):
                parsed.append(chunk)
        return parsed

    def wire_usage(self) -> Mapping[str, Any] | None:
        """The ``usage`` object, of an answer or of the stream's last chunk with one."""
        body = self.json
        found = [body] if isinstance(body, dict) else list(reversed(self.chunks()))
        return next((c["usage"] for c in found if isinstance(c.get("usage"), dict)), None)

    def usage(self) -> dict[str, Any] | None:
        """The usage in LangChain's form, what the budget prices (``None``: not reported)."""
        wire = self.wire_usage()
        if not wire:
            return None
        details = wire.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return {
            "input_tokens": _count(wire.get("prompt_tokens")),
            "output_tokens": _count(wire.get("completion_tokens")),
            "input_token_details": {"cache_read": _count(cached)},
        }

    def first_choice(self) -> dict[str, Any] | None:
        """``choices[0]`` of an answer (``None`` when absent)."""
        choices = self.json.get("choices") if isinstance(self.json, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        return first if isinstance(first, dict) else None

    def message(self) -> dict[str, Any]:
        """``choices[0].message`` of an answer (``{}`` when absent)."""
        message = (self.first_choice() or {}).get("message")
        return message if isinstance(message, dict) else {}

    def deltas(self) -> list[dict[str, Any]]:
        """Each chunk's ``choices[0].delta``, in order (chunks without one left out)."""
        found = []
        for chunk in self.chunks():
            choices = chunk.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                delta = choices[0].get("delta")
                if isinstance(delta, dict):
                    found.append(delta)
        return found

    @functools.cached_property
    def mapped(self) -> BaseException:
        """What the package makes of this answer: ``errors.classify`` of the SDK's error."""
        body = self.json if self.json is not None else self.response.text
        inner = body.get("error", body) if isinstance(body, dict) else body  # as the SDK does
        error = openai.APIStatusError(
            f"Error code: {self.status} - {body}", response=self.response, body=inner
        )
        return errors.classify(error)

    def verdict(self) -> str:
        """``200``-style for a success, else ``<status> <class the package maps it to>``."""
        if self.status < 400:
            return str(self.status)
        return f"{self.status} {type(self.mapped).__name__}"

    def quoted(self, model: str | None = None) -> str:
        """:meth:`verdict` plus the server's message, the model ID as ``<model>``."""
        mapped = self.mapped
        message = getattr(mapped, "server_message", None)
        if self.status < 400 or not message:
            return self.verdict()
        if model:
            message = message.replace(model, "<model>")
        return f'{self.verdict()}: "{message}"'

    def refused_param(self) -> str:
        """:meth:`verdict`, naming the parameter a 422's ``detail`` blames."""
        mapped = self.mapped
        if not isinstance(mapped, errors.WBInvalidRequestError):
            return self.verdict()
        if mapped.detail is None:
            return f"{self.verdict()}, no detail"
        return f"{self.verdict()}, detail names {getattr(mapped, 'param', None) or '?'}"

    def evidence(self) -> dict[str, Any]:
        """Status, notable header names with value shapes, and the body (JSON or text)."""
        body = self.json
        if body is None:
            body = self.response.text[:4000]
        return {
            "status": self.status,
            "headers": notable_headers(self.response.headers),
            "body": body,
        }


def _count(value: object) -> int:
    """A token count, 0 when the service sent none (or not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def sse_lines(content: bytes) -> list[tuple[str, str]]:
    """An SSE body as (kind, value) pairs: ``data``, ``comment``, ``event``, ``id``, ``retry``."""
    lines = []
    for raw in content.decode("utf-8", "replace").splitlines():
        if not raw:
            continue
        if raw.startswith(":"):
            lines.append(("comment", raw[1:].strip()))
            continue
        field, _, value = raw.partition(":")
        lines.append((field.strip(), value.strip()))
    return lines


def shape(value: str) -> str:
    """A header value's shape, never the value: values may identify the user."""
    patterns = (
        (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
        (r"\d+", "<integer>"),
        (r"\d+\.\d+", "<number>"),
        (r"[0-9a-fA-F]+", f"<{len(value)} hex>"),
        (r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} GMT", "<http-date>"),
    )
    for pattern, name in patterns:
        if re.fullmatch(pattern, value.strip()):
            return name
    return f"<{len(value)} characters>"


def notable_headers(headers: httpx2.Headers) -> dict[str, str]:
    """Response headers other than standard HTTP ones, as name -> shape."""
    return {
        name.lower(): shape(value)
        for name, value in headers.multi_items()
        if name.lower() not in STANDARD_HEADERS
    }


class Wire:
    """Sends the probe's requests; model requests pass the budget guard first."""

    def __init__(self, service: Service, budget: Budget) -> None:
        self.service = service
        self.budget = budget
        self.client = httpx2.Client(base_url=service.base_url, timeout=service.timeout)

    def headers(self, *, key: str | None = "", project: str | None = "") -> dict[str, str]:
        """The request headers; ``key``/``project`` ``None`` leaves one out, ``""`` the default."""
        key = self.service.api_key if key == "" else key
        project = self.service.project if project == "" else project
        sent = {"User-Agent": USER_AGENT}
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        if project is not None:
            sent["OpenAI-Project"] = project
        return sent

    def get(self, path: str) -> Exchange:
        """A ``GET`` (``/models``: no model, nothing to price)."""
        return Exchange(self.client.get(path.lstrip("/"), headers=self.headers()))

    def chat(
        self,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        prompt_tokens: int | None = None,
        priced: bool = True,
    ) -> Exchange:
        """``POST /chat/completions`` once the budget guard has reserved its floor.

        Raises ``WBBudgetExceededError`` (nothing sent) when the floor does not fit.
        The answer is priced from its usage; one without usage keeps the floor.
        ``priced=False`` is for a model that does not exist: it has no price to reserve
        (the guard would only warn so) and its 404 costs nothing.
        """
        model = str(body["model"])

        def send(_: pipeline.Call | None = None) -> Exchange:
            sent = headers if headers is not None else self.headers()
            return Exchange(self.client.post("chat/completions", json=body, headers=sent))

        if not priced:
            return send()
        tokens = prompt_tokens or rough_tokens(json.dumps(body["messages"]))
        guard = BudgetGuard(self.budget, LOCAL, tokens, body.get("max_tokens"))
        call = pipeline.Call(model=model, base_url=self.service.base_url)
        exchange: Exchange
        exchange, finish = pipeline.run(pipeline.compose([guard])(call), send, lambda _: None)
        finish(model, exchange.usage())
        return exchange

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
