"""``ChatWBInference``: LangChain's chat model for W&B Inference."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
import urllib.parse
import warnings
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, fields
from typing import Any, Literal

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.callbacks.manager import ahandle_event, handle_event
from langchain_core.language_models import LangSmithParams, LanguageModelInput, ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils import from_env, secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import ConfigDict, Field, InstanceOf, SecretStr, model_validator
from typing_extensions import Self

from langchain_wandb_inference import _http
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.errors import DEFAULT_BASE_URL, KEYS_URL, classify
from langchain_wandb_inference.models import (
    Lifecycle,
    ModelInfo,
    WBModel,
    model_info,
    model_profile,
)
from langchain_wandb_inference.policies import Budget, CircuitBreaker, RetryPolicy
from langchain_wandb_inference.policies import _pipeline as pipeline
from langchain_wandb_inference.policies._budget import BudgetGuard
from langchain_wandb_inference.policies._circuit_breaker import Breaker
from langchain_wandb_inference.policies._concurrency import AdaptiveConcurrency
from langchain_wandb_inference.policies._fallback import FallbackPolicy
from langchain_wandb_inference.policies._fleet import RedisURL, state_for
from langchain_wandb_inference.policies._pipeline import Call, Finish, Notify, Policy
from langchain_wandb_inference.usage import clean_usage, rough_tokens

logger = logging.getLogger("langchain_wandb_inference")

DEFAULT_MODEL = WBModel.LLAMA_3_1_8B_INSTRUCT.value
DEFAULT_TIMEOUT = 60.0

# Options that only exist on OpenAI's Responses API, which W&B does not serve.
_RESPONSES_ONLY = (
    "use_responses_api",
    "reasoning",
    "include",
    "truncation",
    "context_management",
    "use_previous_response_id",
)
# W&B request fields the OpenAI SDK has no argument for: sent through ``extra_body``.
_WB_BODY_FIELDS = ("cache_salt",)

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


class ChatWBInference(BaseChatOpenAI):
    r"""W&B Inference (CoreWeave Serverless Inference) chat model.

    Open-weight models (Llama, DeepSeek, Qwen, gpt-oss, GLM, Kimi, Gemma…) behind
    W&B's OpenAI-compatible API, with everything ``ChatOpenAI`` does on Chat
    Completions — invoke, stream, async, batch, tools, structured output, usage —
    plus what W&B adds: the ``OpenAI-Project`` header, the ``reasoning`` field,
    W&B's error semantics, and the model catalog.

    Setup:
        ``pip install langchain-wandb-inference`` and set ``WANDB_API_KEY`` (keys at
        https://wandb.ai/authorize).  Set ``WANDB_ENTITY`` / ``WANDB_PROJECT`` or pass
        ``project="team/project"`` so usage is tracked against your team's project.

    Key init args:
        model: a :class:`WBModel` or any model ID string (the catalog changes
            monthly), or a LoRA artifact ``wandb-artifact:///team/project/name:v``.
        api_key: W&B API key (or a callable returning one); defaults to
            ``WANDB_API_KEY``.
        project: ``team/project`` for the ``OpenAI-Project`` header.
        base_url: defaults to ``WANDB_INFERENCE_BASE_URL`` or W&B's public URL.
        timeout: per request, 60 s by default (reasoning models: prefer streaming).
        retry: :class:`RetryPolicy` (3 attempts, backoff from 1 s); ``None`` disables.
        fallback_models: model IDs tried in order when the model cannot serve.
        circuit_breaker: :class:`CircuitBreaker`; ``None`` disables.
        max_concurrency: cap on requests in flight per model (adaptive below it).
        budget_usd / budget: stop calling once the estimated spend reaches a limit.
        enable_thinking: toggle reasoning on models that allow it.
        reasoning_effort: passed to reasoning models as is.
        cache_salt: isolates W&B's prefix-cache reuse.
        send_reasoning_back: send earlier turns' reasoning back to the model (tool
            loops); ``None`` takes the catalog's per-model default.

    Instantiate:
        .. code-block:: python

            from langchain_wandb_inference import ChatWBInference, WBModel

            llm = ChatWBInference(model=WBModel.GPT_OSS_120B, project="my-team/my-project")

    Invoke, stream, reasoning:
        .. code-block:: python

            msg = llm.invoke("Why is the sky blue?")
            msg.content_blocks  # [{"type": "reasoning", ...}, {"type": "text", ...}]
            for chunk in llm.stream("Count to three"):
                print(chunk.text, end="")

    Tools and structured output: ``llm.bind_tools([...])``,
    ``llm.with_structured_output(Schema)`` (``json_schema`` by default;
    ``function_calling`` and ``json_mode`` too).

    Reliability: a quota, auth, permission or invalid-request error costs one request
    and raises a typed error from :mod:`langchain_wandb_inference.errors`; 429
    concurrency, 500, 503, timeouts and lost connections are retried; an overloaded,
    retired or circuit-broken model hands over to ``fallback_models`` at once, with
    the same tools and schema.  ``response_metadata["model_name"]`` tells which
    model answered.
    """

    model_name: str = Field(default=DEFAULT_MODEL, alias="model")
    """Model ID: a :class:`WBModel` member or any string W&B serves."""
    openai_api_key: SecretStr | Callable[[], str] | Callable[[], Awaitable[str]] | None = Field(
        alias="api_key", default_factory=secret_from_env("WANDB_API_KEY", default=None)
    )
    """W&B API key (``WANDB_API_KEY``), or a callable returning one (key rotation)."""
    openai_api_base: str | None = Field(
        alias="base_url",
        default_factory=from_env("WANDB_INFERENCE_BASE_URL", default=DEFAULT_BASE_URL),
    )
    """Base URL (``WANDB_INFERENCE_BASE_URL``, else W&B's public endpoint)."""
    project: str | None = Field(default=None, repr=False)
    """``team/project`` sent as ``OpenAI-Project`` (else ``WANDB_ENTITY``/``WANDB_PROJECT``)."""
    openai_proxy: str | None = None
    """An explicit proxy URL; unlike ChatOpenAI, ``OPENAI_PROXY`` is never read."""
    request_timeout: float | tuple[float, float] | Any | None = Field(
        default=DEFAULT_TIMEOUT, alias="timeout"
    )
    """Seconds per request (ChatOpenAI's default is none: a hung server blocks forever)."""
    max_tokens: int | None = Field(default=None, alias="max_completion_tokens")
    """Most tokens to generate (``max_completion_tokens`` is accepted too)."""
    stream_usage: bool | None = True
    """W&B sends usage in a final stream chunk: on by default."""
    retry: InstanceOf[RetryPolicy] | None = Field(default_factory=RetryPolicy)
    """Retry policy for transient failures; ``None`` disables retries."""
    fallback_models: list[str] = Field(default_factory=list)
    """Models tried in order when the model is overloaded, retired, or keeps failing."""
    circuit_breaker: InstanceOf[CircuitBreaker] | None = Field(default_factory=CircuitBreaker)
    """Skips a model after repeated transient failures; ``None`` disables."""
    max_concurrency: int | None = None
    """Cap on requests in flight per (project, model); the limit adapts below it."""
    limit_concurrency: bool = True
    """Adaptive client-side concurrency limit (W&B limits requests in flight)."""
    budget_usd: float | None = None
    """This instance's own spending limit, in estimated USD."""
    budget: InstanceOf[Budget] | None = None
    """A spending limit shared with other models."""
    enable_thinking: bool | None = None
    """Sent as ``chat_template_kwargs.enable_thinking`` to toggle reasoning."""
    cache_salt: str | None = None
    """Non-empty string isolating W&B's prefix-cache reuse."""
    send_reasoning_back: bool | None = None
    """Send earlier turns' reasoning back in later requests (``None``: catalog default)."""
    redis_url: RedisURL = Field(
        default_factory=secret_from_env("WANDB_INFERENCE_REDIS_URL", default=None),
        validate_default=True,
    )
    """Redis shared by a fleet of processes (``WANDB_INFERENCE_REDIS_URL``; the ``redis``
    extra): one concurrency limit, circuit and named budgets for all (``None``: per process)."""

    # hide_input_in_errors: a validation error must never echo the api_key it was given.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    # -- configuration --------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _settings_from_dicts(cls, values: Any) -> Any:
        """Rebuild policies written by :meth:`to_json` (plain dicts) and map ``max_retries``.

        ``max_retries=N`` (ChatOpenAI's knob) becomes ``RetryPolicy(max_attempts=N + 1)``
        unless a retry policy is given: the SDK's own retries are always off, so exactly
        one layer retries.
        """
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for name, policy_type in _POLICY_FIELDS.items():
            if isinstance(values.get(name), dict):
                values[name] = policy_type(**values[name])
        max_retries = values.pop("max_retries", None)
        if max_retries is not None and "retry" not in values:
            values["retry"] = RetryPolicy(max_attempts=max_retries + 1) if max_retries else None
        if isinstance(values.get("model"), WBModel):
            values["model"] = values["model"].value
        return values

    @model_validator(mode="after")
    def validate_environment(self) -> Self:
        """Check the settings, then build the W&B clients (as langchain-xai does).

        Replaces ``BaseChatOpenAI.validate_environment``, so no ``OPENAI_*`` variable
        supplies the key, URL, organization, project, proxy or retries.
        """
        _refuse_responses_api_options(self)
        _check_settings(self)
        self.project = resolve_project(self.project)
        self.openai_organization = None
        self.max_retries = 0
        if self.budget_usd is not None:
            self.budget = Budget(self.budget_usd)
        sync_key, async_key = _http.api_keys(self.openai_api_key)
        params: dict[str, Any] = {
            "base_url": self.openai_api_base,
            "max_retries": 0,
            "timeout": self.request_timeout,
            "default_headers": self.default_headers,
            "default_query": self.default_query,
        }
        if not self.client and sync_key is not None:
            http_client = self.http_client or _http.sync_client(
                self.openai_api_base,
                self.request_timeout,
                self.http_socket_options,
                self.openai_proxy,
            )
            self.root_client = openai.OpenAI(api_key=sync_key, http_client=http_client, **params)
            self.client = self.root_client.chat.completions
        if not self.async_client:
            http_client = self.http_async_client or _http.async_client(
                self.openai_api_base,
                self.request_timeout,
                self.http_socket_options,
                self.openai_proxy,
            )
            self.root_async_client = openai.AsyncOpenAI(
                api_key=async_key, http_client=http_client, **params
            )
            self.async_client = self.root_async_client.chat.completions
        for client in (self.root_client, self.root_async_client):
            if client is not None:  # the SDK fills None from OPENAI_ORG_ID/OPENAI_PROJECT_ID
                client.organization, client.project = None, self.project
        self._add_version("langchain-wandb-inference", __version__)
        _warn_lifecycle_once(self.model_name)
        return self

    # -- LangChain conventions ------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "chat-wandb-inference"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Serialize the key and the Redis URL as references to their variables, never values."""
        return {
            "api_key": "WANDB_API_KEY",
            "openai_api_key": "WANDB_API_KEY",
            "redis_url": "WANDB_INFERENCE_REDIS_URL",
        }

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """``["langchain_wandb_inference", "chat_models"]``."""
        return ["langchain_wandb_inference", "chat_models"]

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The model can be saved with ``dumpd`` and loaded back."""
        return True

    @property
    def lc_attributes(self) -> dict[str, Any]:
        """Nothing beyond the constructor arguments (and never the project header)."""
        return {}

    def to_json(self) -> Any:
        """Serialize without the project and custom headers (they identify your team).

        Policies are written as their settings (plain dicts) so that ``load`` can
        rebuild them; a shared :class:`Budget` is runtime state and is left out.
        """
        data = super().to_json()
        kwargs = data.get("kwargs")
        if isinstance(kwargs, dict):
            for private in ("project", "default_headers", "budget", "max_retries"):
                kwargs.pop(private, None)
            for name, policy_type in _POLICY_FIELDS.items():
                value = getattr(self, name)
                if value == policy_type():
                    kwargs.pop(name, None)
                elif value is not None:
                    kwargs[name] = _settings(value)
        return data

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        ls_params = super()._get_ls_params(stop=stop, **kwargs)
        ls_params["ls_provider"] = "wandb"
        return ls_params

    def _resolve_model_profile(self) -> ModelProfile | None:
        return model_profile(self.model_name) or None

    def _use_responses_api(self, payload: dict[str, Any]) -> bool:
        """Never: W&B serves Chat Completions only (even for ``codex``-named models)."""
        return False

    # -- request and response shape -----------------------------------------------------

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        enable_thinking = kwargs.pop("enable_thinking", self.enable_thinking)
        extra = {name: kwargs.pop(name, getattr(self, name)) for name in _WB_BODY_FIELDS}
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        for tool in payload.get("tools") or []:
            if not (isinstance(tool, dict) and tool.get("type") == "function"):
                kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
                msg = (
                    f"W&B Inference supports function tools only; got a {kind!r} tool "
                    "(built-in tools need OpenAI's Responses API)."
                )
                raise ValueError(msg)
        body = dict(payload.get("extra_body") or {})
        body.update({k: v for k, v in extra.items() if v is not None})
        if enable_thinking is not None:
            template = dict(body.get("chat_template_kwargs") or {})
            template["enable_thinking"] = enable_thinking
            body["chat_template_kwargs"] = template
        if body:
            payload["extra_body"] = body
        if self._sends_reasoning_back(payload.get("model", self.model_name)):
            self._send_reasoning_history(input_, payload["messages"])
        return payload

    def _send_reasoning_history(self, input_: LanguageModelInput, wire: list[Any]) -> None:
        """Put each earlier AI turn's reasoning back on its wire message (tool loops)."""
        messages = self._convert_input(input_).to_messages()
        if len(messages) != len(wire):  # not one wire message per message: leave as is
            return
        for message, sent in zip(messages, wire, strict=True):
            reasoning = message.additional_kwargs.get("reasoning_content")
            if isinstance(message, AIMessage) and reasoning:
                sent["reasoning"] = reasoning

    def _sends_reasoning_back(self, model: str) -> bool:
        if self.send_reasoning_back is not None:
            return self.send_reasoning_back
        info = model_info(model)
        return bool(info and info.send_reasoning_back_default)

    def _create_chat_result(
        self, response: Any, generation_info: dict[str, Any] | None = None
    ) -> ChatResult:
        _clean_response_usage(response)
        result = super()._create_chat_result(response, generation_info)
        choices = (
            response.get("choices") if isinstance(response, dict) else response.choices
        ) or []
        for generation, choice in zip(result.generations, choices, strict=False):
            wire = choice.get("message") if isinstance(choice, dict) else choice.message
            _attach_reasoning(generation.message, wire)
            generation.message.response_metadata["model_provider"] = "wandb"
        if result.llm_output is not None:
            result.llm_output["model_provider"] = "wandb"
        return result

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict[str, Any],
        default_chunk_class: type,
        base_generation_info: dict[str, Any] | None,
    ) -> ChatGenerationChunk | None:
        if isinstance(chunk.get("usage"), Mapping):
            chunk = {**chunk, "usage": clean_usage(chunk["usage"])}
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        if generation is None:
            return None
        choices = chunk.get("choices") or []
        if choices:
            _attach_reasoning(generation.message, choices[0].get("delta"))
        generation.message.response_metadata["model_provider"] = "wandb"
        return generation

    def with_structured_output(
        self,
        schema: Any = None,
        *,
        method: Literal["function_calling", "json_mode", "json_schema"] | None = None,
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output; ``method`` defaults to ``json_schema`` as W&B advises.

        Models the catalog marks as lacking ``json_schema`` default to
        ``function_calling`` instead.
        """
        if method is None:
            info = model_info(self.model_name)
            method = "function_calling" if info and not info.structured_output else "json_schema"
        return super().with_structured_output(
            schema, method=method, include_raw=include_raw, strict=strict, **kwargs
        )

    # -- the catalog, live -------------------------------------------------------------

    def list_models(self) -> list[ListedModel]:
        """Models the service lists now (``GET /models``), joined with the catalog.

        Retried like a chat call (the retry policy only: listing is not a model call).
        """
        call = self._listing_call()
        page, _ = pipeline.run(
            pipeline.compose([self.retry] if self.retry else [])(call),
            lambda attempt: self.root_client.models.list(timeout=attempt.timeout()),
            lambda event: None,
        )
        return _joined(page.data)

    async def alist_models(self) -> list[ListedModel]:
        """Async twin of :meth:`list_models`."""
        call = self._listing_call()

        async def send(attempt: Call) -> Any:
            return await self.root_async_client.models.list(timeout=attempt.timeout())

        async def ignore(event: Notify) -> None:
            return None

        page, _ = await pipeline.arun(
            pipeline.compose([self.retry] if self.retry else [])(call), send, ignore
        )
        return _joined(page.data)

    def _listing_call(self) -> Call:
        deadline = self.retry.deadline if self.retry else None
        return Call(
            model="",
            base_url=str(self.openai_api_base),
            project=self.project,
            deadline=None if deadline is None else time.monotonic() + deadline,
            request_timeout=self.request_timeout,
        )

    # -- the call path: policies composed once for every path ------------------------

    def _policies(self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> list[Policy]:
        """The pipeline, outermost first; a new policy is one line here."""
        max_tokens = kwargs.get("max_tokens", kwargs.get("max_completion_tokens", self.max_tokens))
        state = state_for(self.redis_url)
        chain: list[Policy | None] = [
            BudgetGuard(self.budget, state, _prompt_tokens(messages), max_tokens)
            if self.budget
            else None,
            FallbackPolicy(tuple(self.fallback_models)) if self.fallback_models else None,
            self.retry,
            Breaker(self.circuit_breaker, state) if self.circuit_breaker else None,
            AdaptiveConcurrency(state, self.max_concurrency) if self.limit_concurrency else None,
        ]
        return [policy for policy in chain if policy is not None]

    def _new_call(
        self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
    ) -> tuple[Call, pipeline.Plan[Any]]:
        """The call as the policies see it, and the plan that runs it."""
        deadline = self.retry.deadline if self.retry else None
        call = Call(
            model=str(kwargs.get("model") or self.model_name),
            base_url=str(self.openai_api_base),
            project=self.project,
            deadline=None if deadline is None else time.monotonic() + deadline,
            request_timeout=kwargs.get("timeout", self.request_timeout),
            fingerprint=lambda: _fingerprint(messages, kwargs),
        )
        return call, pipeline.compose(self._policies(messages, kwargs))(call)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call, plan = self._new_call(messages, kwargs)

        def send(attempt: Call) -> ChatResult:
            generate: Callable[..., ChatResult] = super(ChatWBInference, self)._generate
            try:
                return generate(messages, stop, run_manager, **_for_attempt(kwargs, attempt))
            except openai.APIStatusError as exc:
                instead = _function_calling_instead(kwargs, exc, attempt.model)
                if instead is None:
                    raise
                return _as_json_schema_answer(
                    generate(messages, stop, run_manager, **_for_attempt(instead, attempt))
                )

        result: ChatResult
        result, finish = pipeline.run(plan, send, _notifier(run_manager))
        finish(*_answer_usage(result, call, messages))
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call, plan = self._new_call(messages, kwargs)

        async def send(attempt: Call) -> ChatResult:
            agenerate: Callable[..., Awaitable[ChatResult]] = super(
                ChatWBInference, self
            )._agenerate
            try:
                return await agenerate(messages, stop, run_manager, **_for_attempt(kwargs, attempt))
            except openai.APIStatusError as exc:
                instead = _function_calling_instead(kwargs, exc, attempt.model)
                if instead is None:
                    raise
                return _as_json_schema_answer(
                    await agenerate(messages, stop, run_manager, **_for_attempt(instead, attempt))
                )

        result: ChatResult
        result, finish = await pipeline.arun(plan, send, _async_notifier(run_manager))
        await finish.acall(*_answer_usage(result, call, messages))
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call, plan = self._new_call(messages, kwargs)

        def open_stream(attempt: Call) -> tuple[list[ChatGenerationChunk], Iterator[Any]]:
            chunks = super(ChatWBInference, self)._stream(
                messages, stop, run_manager, **_for_attempt(kwargs, attempt)
            )
            head: list[ChatGenerationChunk] = []
            for chunk in chunks:  # a failure before any content is retried
                head.append(chunk)
                if _carries_content(chunk):
                    break
            return head, chunks

        (head, rest), finish = pipeline.run(plan, open_stream, _notifier(run_manager))
        tally = _StreamTally(call, finish, messages)
        try:
            yield from tally.relay(head)
            while True:
                finish.progress(reading=True)
                try:
                    chunk = next(rest)
                except StopIteration:
                    break
                except Exception as exc:
                    tally.fail(exc)
                yield from tally.relay([chunk])
            yield from tally.end()
        finally:
            rest.close()
            finish(*tally.outcome())

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call, plan = self._new_call(messages, kwargs)

        async def open_stream(
            attempt: Call,
        ) -> tuple[list[ChatGenerationChunk], AsyncIterator[Any]]:
            chunks = super(ChatWBInference, self)._astream(
                messages, stop, run_manager, **_for_attempt(kwargs, attempt)
            )
            head: list[ChatGenerationChunk] = []
            async for chunk in chunks:
                head.append(chunk)
                if _carries_content(chunk):
                    break
            return head, chunks

        (head, rest), finish = await pipeline.arun(plan, open_stream, _async_notifier(run_manager))
        tally = _StreamTally(call, finish, messages)
        try:
            for chunk in tally.relay(head):
                yield chunk
            while True:
                finish.progress(reading=True)
                try:
                    chunk = await anext(rest)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    tally.fail(exc)
                for out in tally.relay([chunk]):
                    yield out
            for chunk in tally.end():
                yield chunk
        finally:
            await rest.aclose()
            await finish.acall(*tally.outcome())


_POLICY_FIELDS: dict[str, Any] = {"retry": RetryPolicy, "circuit_breaker": CircuitBreaker}


def _settings(policy: Any) -> dict[str, Any]:
    """A policy dataclass's constructor arguments, for serialization."""
    return {f.name: getattr(policy, f.name) for f in fields(policy) if f.init}


def _refuse_responses_api_options(model: ChatWBInference) -> None:
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


def _check_settings(model: ChatWBInference) -> None:
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


def _warn_lifecycle_once(model: str) -> None:
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


def _prompt_tokens(messages: Sequence[BaseMessage]) -> int:
    """A cheap prompt-size estimate, text only (an image's base64 bytes are not tokens)."""
    return sum(rough_tokens(m.text) for m in messages)


def _fingerprint(messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> str:
    """The request's content without the model: what makes two requests the same."""
    content = repr(
        (
            [m.model_dump(exclude={"id"}) for m in messages],
            sorted((k, repr(v)) for k, v in kwargs.items() if k != "model"),
        )
    )
    return hashlib.blake2b(content.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class ListedModel:
    """A model ``GET /models`` lists, with the catalog's metadata (``None``: not in it)."""

    id: str
    info: ModelInfo | None


def _joined(listed: Sequence[Any]) -> list[ListedModel]:
    """``GET /models`` entries with the catalog's metadata."""
    return [ListedModel(m.id, model_info(m.id)) for m in listed]


def _for_attempt(kwargs: Mapping[str, Any], attempt: Call) -> dict[str, Any]:
    """The caller's kwargs aimed at this attempt's model, with its timeout."""
    return {**kwargs, "model": attempt.model, "timeout": attempt.timeout()}


def _function_calling_instead(
    kwargs: Mapping[str, Any], exc: openai.APIStatusError, model: str
) -> dict[str, Any] | None:
    """The same request with the schema as a forced function, if W&B refused json_schema.

    Some models lack ``response_format`` (W&B answers 400/422 naming it); function
    calling carries the same schema.  ``None`` when that is not what happened.
    """
    response_format = kwargs.get("response_format")
    if response_format is None or exc.status_code not in (400, 422):
        return None
    if "response_format" not in f"{exc.message} {exc.body}":
        return None
    if isinstance(response_format, dict):
        if response_format.get("type") != "json_schema":
            return None  # json_object has no schema to carry over
        schema = response_format["json_schema"]
        function = {"name": schema["name"], "parameters": schema.get("schema", {})}
    else:  # a Pydantic class or TypedDict, as with_structured_output binds it
        function = dict(convert_to_openai_tool(response_format)["function"])
    name = function["name"]
    logger.warning(
        "W&B Inference: %s refused response_format json_schema (HTTP %s); "
        "retrying once with function calling",
        model,
        exc.status_code,
    )
    instead = {k: v for k, v in kwargs.items() if k not in ("response_format", "strict")}
    instead["tools"] = [{"type": "function", "function": function}]
    instead["tool_choice"] = {"type": "function", "function": {"name": name}}
    return instead


def _as_json_schema_answer(result: ChatResult) -> ChatResult:
    """Present a forced function call as the JSON answer ``json_schema`` parsers expect."""
    for generation in result.generations:
        message = generation.message
        if isinstance(message, AIMessage) and message.tool_calls:
            args = message.tool_calls[0]["args"]
            message.content = json.dumps(args)
            message.additional_kwargs["parsed"] = args
            message.tool_calls = []
            message.additional_kwargs.pop("tool_calls", None)
    return result


def _attach_reasoning(message: BaseMessage, wire: Any) -> None:
    """Copy W&B's ``reasoning`` (or legacy ``reasoning_content``) where LangChain reads it.

    ``additional_kwargs["reasoning_content"]`` is what ``content_blocks`` turns into a
    ``reasoning`` block placed before the text.
    """
    if not wire:
        return
    if isinstance(wire, Mapping):
        reasoning = wire.get("reasoning") or wire.get("reasoning_content")
    else:  # the SDK's parsed message keeps W&B's extra fields as attributes
        reasoning = getattr(wire, "reasoning", None) or getattr(wire, "reasoning_content", None)
    if isinstance(reasoning, str) and reasoning:
        message.additional_kwargs["reasoning_content"] = reasoning


def _clean_response_usage(response: Any) -> None:
    """Drop usage fields that are not non-negative integers, before LangChain reads them."""
    if isinstance(response, dict):
        if isinstance(response.get("usage"), Mapping):
            response["usage"] = clean_usage(response["usage"])
        return
    usage = getattr(response, "usage", None)
    if usage is not None and hasattr(usage, "model_dump"):
        cleaned = clean_usage(usage.model_dump())
        if cleaned != usage.model_dump():
            response.usage = type(usage).model_construct(**cleaned)


def _answer_usage(
    result: ChatResult, call: Call, messages: Sequence[BaseMessage]
) -> tuple[str, Mapping[str, Any]]:
    """Which model answered, and its usage (estimated when it reported none)."""
    message = result.generations[0].message if result.generations else None
    model = str((result.llm_output or {}).get("model_name") or call.model)
    usage = getattr(message, "usage_metadata", None)
    if usage:
        return model, usage
    return model, _estimated_usage(messages, message.text if message is not None else "")


def _estimated_usage(messages: Sequence[BaseMessage], output: str) -> dict[str, Any]:
    """Usage for an answer that reported none: the prompt and what arrived, 4 chars a token."""
    prompt, produced = _prompt_tokens(messages), rough_tokens(output)
    return {"input_tokens": prompt, "output_tokens": produced, "total_tokens": prompt + produced}


def _carries_content(chunk: ChatGenerationChunk) -> bool:
    """Whether a chunk gives the caller anything (a role-only first chunk does not)."""
    message = chunk.message
    return bool(
        message.content
        or message.additional_kwargs.get("reasoning_content")
        or getattr(message, "tool_call_chunks", None)
        or getattr(message, "usage_metadata", None)
        or (chunk.generation_info or {}).get("finish_reason")
    )


class _StreamTally:
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
        return self.model, self.usage or _estimated_usage(self.messages, "".join(self.text))


def _without_usage(chunk: ChatGenerationChunk) -> ChatGenerationChunk:
    message = chunk.message.model_copy(update={"usage_metadata": None})
    return ChatGenerationChunk(message=message, generation_info=chunk.generation_info)


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


def _notifier(run_manager: CallbackManagerForLLMRun | None) -> Callable[[Notify], None]:
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


def _async_notifier(
    run_manager: AsyncCallbackManagerForLLMRun | None,
) -> Callable[[Notify], Awaitable[None]]:
    """Async twin of :func:`_notifier`."""

    async def notify(event: Notify) -> None:
        if run_manager is None:
            return
        if event.name == "retry":
            await run_manager.on_retry(event.data["retry_state"])
        else:
            args, kwargs = _custom_event(run_manager, event)
            await ahandle_event(*args, **kwargs)

    return notify
