"""Token usage and its estimated price, from the catalog's per-1M-token prices.

W&B bills per model per million tokens: input, output, and (on some models) cached
input at a lower price.  The estimate here uses the catalog's figures
(:mod:`langchain_wandb_inference.models`); W&B's billing page is the source of truth.
A model without a known price (a new model, a LoRA adapter) is never priced at zero
silently: :func:`estimate_cost` returns ``None`` and callers flag it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_wandb_inference.models import model_info

PER_TOKENS = 1_000_000


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
