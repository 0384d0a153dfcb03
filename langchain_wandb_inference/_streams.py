"""Relaying a stream to the caller, and what the policies need to know at its end.

Why apart: a chunk that carries nothing (the role-only first chunk) is not content, so an
error right after it is still retried; usage is counted once however often the engine
reports it; the concurrency limiter is told whether the caller is reading; a failure
after content reached the caller is raised typed, saying it was not retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from langchain_wandb_inference._answers import estimated_usage
from langchain_wandb_inference.errors import classify
from langchain_wandb_inference.policies._pipeline import Call, Finish


def carries_content(chunk: ChatGenerationChunk) -> bool:
    """Whether a chunk gives the caller anything (a role-only first chunk does not)."""
    message = chunk.message
    return bool(
        message.content
        or message.additional_kwargs.get("reasoning_content")
        or getattr(message, "tool_call_chunks", None)
        or getattr(message, "usage_metadata", None)
        or (chunk.generation_info or {}).get("finish_reason")
    )


class StreamTally:
    """Relays a stream to the caller, keeping what the policies need at its end.

    Usage is counted once: an engine that reports usage on several chunks (cumulative
    counts) would be summed by LangChain's chunk aggregation, so a chunk carrying usage
    is held back until the next one arrives, and only the last usage reaches the caller.
    """

    def __init__(self, call: Call, finish: Finish, messages: Sequence[BaseMessage]) -> None:
        self.call = call
        self.finish = finish
        self.messages = messages
        self.model = call.model
        self.usage: dict[str, Any] | None = None
        self.held: ChatGenerationChunk | None = None
        self.text: list[str] = []
        self.delivered = 0

    def relay(self, chunks: Iterable[ChatGenerationChunk]) -> Iterator[ChatGenerationChunk]:
        """Yield ``chunks`` (holding back the latest one that carries usage)."""
        for chunk in chunks:
            self.model = str(chunk.message.response_metadata.get("model_name") or self.model)
            self.text.append(chunk.text)
            usage = getattr(chunk.message, "usage_metadata", None)
            if self.held is not None:
                yield from self._deliver(_without_usage(self.held))
                self.held = None
            if usage:
                self.usage = dict(usage)
                self.held = chunk
                continue
            yield from self._deliver(chunk)

    def end(self) -> Iterator[ChatGenerationChunk]:
        """The stream ended: deliver the held chunk, with the last usage."""
        if self.held is not None:
            held, self.held = self.held, None
            yield from self._deliver(held)

    def _deliver(self, chunk: ChatGenerationChunk) -> Iterator[ChatGenerationChunk]:
        self.finish.progress(reading=False)
        self.delivered += 1
        yield chunk

    def fail(self, exc: Exception) -> None:
        """Raise a failure after content reached the caller, typed, saying it was not retried."""
        mapped = classify(exc, model=self.call.model, project=self.call.project)
        if mapped is exc:
            raise exc
        mapped.annotate(  # type: ignore[attr-defined]
            not_retried=f"the stream failed after {self.delivered} chunk(s) reached the caller"
        )
        raise mapped from exc

    def outcome(self) -> tuple[str, Mapping[str, Any]]:
        """Who answered and the usage, counted for what arrived when none was reported."""
        return self.model, self.usage or estimated_usage(self.messages, "".join(self.text))


def _without_usage(chunk: ChatGenerationChunk) -> ChatGenerationChunk:
    message = chunk.message.model_copy(update={"usage_metadata": None})
    return ChatGenerationChunk(message=message, generation_info=chunk.generation_info)
