"""What ``ChatWBInference`` accepts, checked once, at construction.

Why here and not at the first call: a setting that would fail (or misbehave) on every
call — a malformed project, a ``base_url`` without a scheme, ``timeout=nan``, an option
that only exists on OpenAI's Responses API — is refused with a ``ValueError`` that names
it and its accepted range, and never echoes the API key.
"""

from __future__ import annotations

import math
import os
import threading
import urllib.parse
import warnings
from typing import TYPE_CHECKING

from pydantic import SecretStr

from langchain_wandb_inference import _http
from langchain_wandb_inference.errors import DEFAULT_BASE_URL, KEYS_URL
from langchain_wandb_inference.models import Lifecycle, model_info

if TYPE_CHECKING:
    from langchain_wandb_inference.chat_models import ChatWBInference

# Options that only exist on OpenAI's Responses API, which W&B does not serve.
_RESPONSES_ONLY = (
    "use_responses_api",
    "reasoning",
    "include",
    "truncation",
    "context_management",
    "use_previous_response_id",
)

_warned_models: set[str] = set()
_warned_lock = threading.Lock()


def resolve_project(project: str | None) -> str | None:
    """The ``team/project`` for the ``OpenAI-Project`` header, validated.

    An explicit value wins; else ``WANDB_PROJECT`` (used as is when it holds a
    ``/``, else joined with ``WANDB_ENTITY``); else ``None`` (W&B then uses your
    default entity and the project ``inference``).
    """
    source = "project"
    if project is None:
        env_project = os.environ.get("WANDB_PROJECT", "").strip()
        if not env_project:
            return None
        entity = os.environ.get("WANDB_ENTITY", "").strip()
        if "/" not in env_project and not entity:
            msg = (
                "WANDB_PROJECT names no team: set WANDB_ENTITY to your team, or pass "
                'project="team/project" to ChatWBInference.'
            )
            raise ValueError(msg)
        project = env_project if "/" in env_project else f"{entity}/{env_project}"
        source = "WANDB_ENTITY/WANDB_PROJECT"
    parts = project.split("/")
    if len(parts) != 2 or not all(p.strip() and p == p.strip() for p in parts):
        msg = (
            f"{source} must have the form 'team/project' (your W&B team or entity, a "
            "slash, and a project name, without spaces)."
        )
        raise ValueError(msg)
    return project


def refuse_responses_api_options(model: ChatWBInference) -> None:
    """Fail loudly on options that would route to ``/v1/responses`` (absent on W&B)."""
    for name in _RESPONSES_ONLY:
        if getattr(model, name, None) not in (None, False):
            msg = (
                f"{name}= selects OpenAI's Responses API, which W&B Inference does not "
                "serve (it has Chat Completions only). Remove it; for reasoning models "
                "use reasoning_effort= or enable_thinking=."
            )
            raise ValueError(msg)
    if model.output_version == "responses/v1":
        msg = 'output_version="responses/v1" needs the Responses API, which W&B does not serve.'
        raise ValueError(msg)


def check_settings(model: ChatWBInference) -> None:
    """Refuse settings that would fail (or misbehave) on every call, naming the range."""
    if model.n is not None and model.n < 1:
        raise ValueError("n must be at least 1.")
    if model.n is not None and model.n > 1 and model.streaming:
        raise ValueError("n must be 1 when streaming.")
    if model.openai_api_key is None:
        msg = (
            "No W&B API key: set the WANDB_API_KEY environment variable or pass "
            f"api_key= to ChatWBInference. Create a key at {KEYS_URL}."
        )
        raise ValueError(msg)
    if isinstance(model.openai_api_key, SecretStr):
        model.openai_api_key = SecretStr(_http.clean_key(model.openai_api_key.get_secret_value()))
    if not isinstance(model.model_name, str) or not model.model_name.strip():
        raise ValueError("model must be a non-empty model ID, e.g. 'openai/gpt-oss-120b'.")
    url = urllib.parse.urlsplit(str(model.openai_api_base or ""))
    if url.scheme not in ("http", "https") or not url.netloc:
        msg = (
            f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL} "
            f"(got {model.openai_api_base!r})."
        )
        raise ValueError(msg)
    timeout = model.request_timeout
    if isinstance(timeout, int | float) and not (
        not isinstance(timeout, bool) and math.isfinite(timeout) and timeout > 0
    ):
        raise ValueError(
            f"timeout must be a finite number of seconds > 0 or None (got {timeout!r})."
        )
    if model.max_concurrency is not None and not (
        isinstance(model.max_concurrency, int) and model.max_concurrency >= 1
    ):
        raise ValueError(
            f"max_concurrency must be an integer >= 1 or None (got {model.max_concurrency!r})."
        )
    if model.budget_usd is not None and model.budget is not None:
        raise ValueError(
            "Pass either budget_usd= (this model's own) or budget= (shared), not both."
        )
    if model.cache_salt == "":
        raise ValueError("cache_salt must be a non-empty string (or None).")
    seen = [model.model_name]
    for fallback in model.fallback_models:
        if not isinstance(fallback, str) or not fallback.strip() or fallback in seen:
            msg = (
                "fallback_models must be distinct, non-empty model IDs other than model= "
                f"(got {model.fallback_models!r})."
            )
            raise ValueError(msg)
        seen.append(fallback)


def warn_lifecycle_once(model: str) -> None:
    """Warn once per process that a model is deprecated or retired, naming its replacement."""
    info = model_info(model)
    if info is None or info.lifecycle not in (Lifecycle.DEPRECATED, Lifecycle.RETIRED):
        return
    with _warned_lock:
        if model in _warned_models:
            return
        _warned_models.add(model)
    when = f" on {info.retired_on.isoformat()}" if info.retired_on else ""
    state = (
        f"was retired{when} (requests fail with 404)"
        if (info.lifecycle is Lifecycle.RETIRED)
        else f"is deprecated and will be retired{when}"
    )
    instead = f"; use {info.replacement!r} instead" if info.replacement else ""
    warnings.warn(f"W&B model {model!r} {state}{instead}.", DeprecationWarning, stacklevel=4)
