"""Token usage and its estimated price, from the catalog's per-1M-token prices.

W&B bills per model per million tokens: input, output, and (on some models) cached
input at a lower price.  The estimate here uses the catalog's figures
(:mod:`langchain_wandb_inference.models`); W&B's billing page is the source of truth.
A model without a known price (a new model, a LoRA adapter) is never priced at zero
silently: :func:`estimate_cost` returns ``None`` and callers flag it.

:func:`get_wb_inference_callback` (W&B's ``get_openai_callback``) tallies tokens and
estimated cost, per model, over every LangChain call in a ``with`` block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_wandb_inference.models import model_info

PER_TOKENS = 1_000_000
CHARS_PER_TOKEN = 4
"""For estimates only (a budget's floor, an answer that reported no usage)."""

logger = logging.getLogger("langchain_wandb_inference")
_warned_fields: set[str] = set()


def rough_tokens(text: str) -> int:
    """A cheap token estimate of ``text`` (:data:`CHARS_PER_TOKEN` characters a token)."""
    return len(text) // CHARS_PER_TOKEN


def clean_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """``usage`` without counts that are not non-negative integers, warning once per field.

    Why: LangChain adds usage fields up; a count like ``"ten"`` would raise and lose the
    answer that was already served, and a negative one would refund a budget.
    """
    cleaned: dict[str, Any] = {}
    for name, value in usage.items():
        if isinstance(value, Mapping):
            cleaned[name] = clean_usage(value)
        elif value is None or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 0
        ):
            cleaned[name] = value
        elif name not in _warned_fields:
            _warned_fields.add(name)
            logger.warning(
                "W&B Inference: ignoring usage field %r: %r is not a non-negative integer",
                name,
                value,
            )
    return cleaned


def cached_tokens(usage: Mapping[str, Any]) -> int:
    """Prompt tokens served from W&B's prefix cache (``input_token_details.cache_read``)."""
    details = usage.get("input_token_details") or {}
    return int(details.get("cache_read") or 0)


def estimate_cost(model: str, usage: Mapping[str, Any]) -> float | None:
    """Estimated USD for one response's ``usage_metadata``; ``None`` if unpriced.

    Cached input tokens are charged at the cached price where the model has one,
    else at the input price.
    """
    info = model_info(model)
    if info is None or info.price is None:
        return None
    price = info.price
    cached = cached_tokens(usage)
    fresh = max(0, int(usage.get("input_tokens") or 0) - cached)
    cached_price = price.input if price.cached_input is None else price.cached_input
    output = int(usage.get("output_tokens") or 0)
    return (fresh * price.input + cached * cached_price + output * price.output) / PER_TOKENS


UNKNOWN_MODEL = "<unknown model>"
"""``by_model`` key for an answer that names no model (so it still shows, unpriced)."""


@dataclass
class ModelUsage:
    """One model's share of a :class:`WBInferenceCallbackHandler` tally.

    ``cost_usd`` is ``None`` when the catalog has no price for the model (a LoRA
    artifact, a model newer than the catalog): its tokens are real, its cost unknown,
    and ``0.0`` would read as "free".
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0


class WBInferenceCallbackHandler(BaseCallbackHandler):
    """Tallies W&B Inference tokens and estimated USD over LangChain calls.

    Attribute names follow langchain-community's ``OpenAICallbackHandler``
    (``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``prompt_tokens_cached``,
    ``reasoning_tokens``, ``successful_requests``, ``total_cost``) so code written for
    ``get_openai_callback`` reads the same here, without depending on that package.

    What it adds, and why:

    * ``total_cost`` comes from :func:`estimate_cost` (the catalog's prices, cached
      input at the cached price).  Models with no known price go to
      ``unpriced_models`` instead of being priced at zero, and ``summary()`` says so;
      ``total_cost`` then covers the priced models only.
    * ``by_model`` splits the tally per answering model, read from the message's
      ``response_metadata["model_name"]`` — with fallbacks that is the model that
      answered, not the one asked for.
    * ``requests_without_usage`` counts answers that carried no ``usage_metadata``
      (e.g. ``stream_usage=False``): their cost is missing from the totals.

    Usage is read from ``usage_metadata`` on the finished message, which LangChain
    builds for both ``invoke`` and streams (the aggregated message carries the
    stream's final usage chunk).  Counters are updated under a lock, so one handler
    can be shared by threads and concurrent async tasks.  Pass it as
    ``config={"callbacks": [handler]}``, or use :func:`get_wb_inference_callback`.
    """

    run_inline = True
    """Run in the event loop for async calls: the update is a few additions under a
    lock, cheaper than LangChain's default hop to a thread pool."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._parent: WBInferenceCallbackHandler | None = None
        self.prompt_tokens = 0
        self.prompt_tokens_cached = 0
        self.completion_tokens = 0
        self.reasoning_tokens = 0
        self.total_tokens = 0
        self.successful_requests = 0
        self.requests_without_usage = 0
        self.total_cost = 0.0
        self.unpriced_models: set[str] = set()
        self.by_model: dict[str, ModelUsage] = {}

    @property
    def always_verbose(self) -> bool:
        """Receive events even when ``verbose=False``, as ``OpenAICallbackHandler`` does."""
        return True

    def __copy__(self) -> WBInferenceCallbackHandler:
        """Return the handler itself: a copy made by config handling would split the tally."""
        return self

    def __deepcopy__(self, memo: Any) -> WBInferenceCallbackHandler:
        """Return the handler itself, for the same reason as :meth:`__copy__`."""
        return self

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Add the answer's usage and estimated cost.

        Only the first generation of each prompt is read: with ``n > 1`` every choice's
        message carries the whole response's usage, so adding them all would overcount.
        """
        fallback_model = (response.llm_output or {}).get("model_name")
        for generations in response.generations:
            message = getattr(generations[0], "message", None) if generations else None
            model = getattr(message, "response_metadata", {}).get("model_name")
            usage = getattr(message, "usage_metadata", None)
            self.record(str(model or fallback_model or UNKNOWN_MODEL), usage)

    def record(self, model: str, usage: Mapping[str, Any] | None) -> None:
        """Add one answer from ``model`` with this ``usage_metadata`` (``None``: unknown).

        Public so usage obtained outside callbacks (e.g. a raw response) can join the tally.
        """
        cost = estimate_cost(model, usage or {})
        handler: WBInferenceCallbackHandler | None = self
        while handler is not None:
            handler._add(model, usage, cost)
            handler = handler._parent

    def _add(self, model: str, usage: Mapping[str, Any] | None, cost: float | None) -> None:
        with self._lock:
            entry = self.by_model.get(model)
            if entry is None:
                entry = self.by_model[model] = ModelUsage(cost_usd=None if cost is None else 0.0)
            self.successful_requests += 1
            entry.requests += 1
            if cost is None:
                self.unpriced_models.add(model)
            if not usage:
                self.requests_without_usage += 1
                return
            input_tokens = int(usage.get("input_tokens") or 0)
            output_tokens = int(usage.get("output_tokens") or 0)
            cached = cached_tokens(usage)
            output_details = usage.get("output_token_details") or {}
            self.prompt_tokens += input_tokens
            self.prompt_tokens_cached += cached
            self.completion_tokens += output_tokens
            self.reasoning_tokens += int(output_details.get("reasoning") or 0)
            self.total_tokens += int(usage.get("total_tokens") or input_tokens + output_tokens)
            entry.input_tokens += input_tokens
            entry.cached_input_tokens += cached
            entry.output_tokens += output_tokens
            if cost is not None:
                self.total_cost += cost
                entry.cost_usd = (entry.cost_usd or 0.0) + cost

    def summary(self) -> str:
        """Return a readable report, per model, flagging what the cost does not cover."""
        with self._lock:
            lines = [
                f"Tokens Used: {self.total_tokens}",
                f"\tPrompt Tokens: {self.prompt_tokens}",
                f"\t\tPrompt Tokens Cached: {self.prompt_tokens_cached}",
                f"\tCompletion Tokens: {self.completion_tokens}",
                f"\t\tReasoning Tokens: {self.reasoning_tokens}",
                f"Successful Requests: {self.successful_requests}",
                f"Total Cost (USD): ${self.total_cost:.8f} (estimated from catalog prices)",
            ]
            if self.unpriced_models:
                names = ", ".join(sorted(self.unpriced_models))
                lines.append(f"\tNOT INCLUDED, no known price: {names}")
            if self.requests_without_usage:
                lines.append(
                    f"\tNOT INCLUDED, answers without usage: {self.requests_without_usage}"
                )
            for model, entry in sorted(self.by_model.items()):
                cost = "no known price" if entry.cost_usd is None else f"${entry.cost_usd:.8f}"
                lines.append(
                    f"{model}: {entry.requests} requests, {entry.input_tokens} input "
                    f"({entry.cached_input_tokens} cached), {entry.output_tokens} output, {cost}"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


_current_handler: ContextVar[WBInferenceCallbackHandler | None] = ContextVar(
    "wb_inference_callback", default=None
)
# Registered once, at import.  langchain-core's get_usage_metadata_callback registers a
# new ContextVar on every call, which grows core's global hook list (scanned on every
# LangChain call) without bound; nesting is handled by ``_parent`` instead.
register_configure_hook(_current_handler, inheritable=True)


@contextmanager
def get_wb_inference_callback() -> Iterator[WBInferenceCallbackHandler]:
    """Count tokens and estimated cost of every LangChain call made inside the block.

    ::

        with get_wb_inference_callback() as cb:
            llm.invoke("Hi")
            await other_llm.ainvoke("Hi")
        print(cb.total_cost, cb.unpriced_models)
        print(cb)  # per-model summary

    The handler is published through a ``ContextVar`` registered with
    ``register_configure_hook`` (langchain-core's mechanism for
    ``get_usage_metadata_callback``), so every chat model, chain or agent run in the
    block gets it without passing ``callbacks=``.  It is a plain ``with`` context
    manager, like core's: use ``with`` inside ``async def`` too — asyncio tasks created
    in the block copy the context and report to the same handler.  Threads do not
    inherit context variables; pass the handler explicitly there (it is thread-safe).
    Nested blocks each count their own calls, and an outer block also counts its
    inner blocks' calls.  The handler stops receiving calls when the block exits,
    even by an exception.
    """
    handler = WBInferenceCallbackHandler()
    handler._parent = _current_handler.get()
    token = _current_handler.set(handler)
    try:
        yield handler
    finally:
        _current_handler.reset(token)
