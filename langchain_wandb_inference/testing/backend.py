"""What the emulator and its answer generators share: the backend interface and its types.

The emulator server owns HTTP, auth, validation, faults, SSE framing and usage; a
``Backend`` only turns one validated request into one ``Completion``.  Keeping these
types in a module of their own lets a backend (``synthetic.SyntheticBackend``,
``local_model.LocalModelBackend``, or one of your own) depend on them without
depending on the server, and the server on them without depending on any backend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """A validated ``POST /chat/completions`` as the server hands it to a backend."""

    model: str
    body: Mapping[str, Any]
    """The request JSON, already validated (messages, tools, response_format, ...)."""
    reasoning: bool
    """Whether this model reasons for this request (catalog mode + ``enable_thinking``)."""


@dataclass(frozen=True)
class ToolCall:
    """One function call in an answer; ``arguments`` is the JSON text sent on the wire."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """A backend's answer; the server frames it as JSON or SSE and adds usage.

    Token counts left as ``None`` are computed by the server with ``count_tokens``.
    """

    content: str | None
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Backend(Protocol):
    """What the emulator needs from an answer generator; must be thread-safe."""

    def complete(self, request: ChatRequest) -> Completion:
        """Answer one validated chat request (raise ``BackendError`` to refuse it)."""
        ...


class BackendError(RuntimeError):
    """A backend's refusal with an HTTP status: the emulator answers it as W&B would.

    The answer has ``status`` and W&B's error shape, ``{"error": {"code", "message",
    "type"}}``, carrying the engine's own ``message`` and ``type`` from ``body``
    verbatim (a llama.cpp overflow keeps llama.cpp's words), so clients are tested
    against what engines really say.  Any other exception from a backend is W&B's 500.
    """

    def __init__(
        self, message: str, status: int = 500, body: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: Mapping[str, Any] = body if body is not None else {"message": message}
        """The engine's error object (``message``, and ``type`` where it has one)."""


TOKEN = re.compile(r"\w+|[^\w\s]")
"""The emulator's tokenizer: runs of word characters, and each other symbol."""


def count_tokens(text: str) -> int:
    """Tokens of ``text`` by the emulator's tokenizer (``TOKEN``)."""
    return len(TOKEN.findall(text))


def message_text(message: Mapping[str, Any]) -> str:
    """Return the text of a message's content, whether a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if p.get("type") == "text")
    return ""
