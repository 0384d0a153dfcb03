"""The pipeline's events (a retry, a fallback hand-over) as LangChain callbacks.

A retry fires LangChain's ``on_retry``; anything else is a custom event
``wb_inference_<name>`` (``on_custom_event``), so tracers and handlers see them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.callbacks.manager import ahandle_event, handle_event

from langchain_wandb_inference.policies._pipeline import Notify


def _custom_event(run_manager: Any, event: Notify) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of LangChain's ``on_custom_event`` dispatch for a pipeline event."""
    args = (
        run_manager.handlers,
        "on_custom_event",
        "ignore_custom_event",
        f"wb_inference_{event.name}",
        dict(event.data),
    )
    kwargs = {
        "run_id": run_manager.run_id,
        "tags": run_manager.tags,
        "metadata": run_manager.metadata,
    }
    return args, kwargs


def notifier(run_manager: CallbackManagerForLLMRun | None) -> Callable[[Notify], None]:
    """Forward pipeline events to LangChain callbacks (``on_retry``, custom events)."""

    def notify(event: Notify) -> None:
        if run_manager is None:
            return
        if event.name == "retry":
            run_manager.on_retry(event.data["retry_state"])
        else:
            args, kwargs = _custom_event(run_manager, event)
            handle_event(*args, **kwargs)

    return notify


def async_notifier(
    run_manager: AsyncCallbackManagerForLLMRun | None,
) -> Callable[[Notify], Awaitable[None]]:
    """Async twin of :func:`notifier`."""

    async def notify(event: Notify) -> None:
        if run_manager is None:
            return
        if event.name == "retry":
            await run_manager.on_retry(event.data["retry_state"])
        else:
            args, kwargs = _custom_event(run_manager, event)
            await ahandle_event(*args, **kwargs)

    return notify
