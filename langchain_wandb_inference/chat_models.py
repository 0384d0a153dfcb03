"""``ChatWBInference``: LangChain's chat model for W&B Inference."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, NoReturn

import openai
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.callbacks.manager import ahandle_event, handle_event
from langchain_core.language_models import LangSmithParams, LanguageModelInput, ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils import secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import ConfigDict, Field, InstanceOf, SecretStr, model_validator
from typing_extensions import Self

from langchain_wandb_inference import pipeline
from langchain_wandb_inference._http import proxies_configured, shared_async_client
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.budget import Budget
from langchain_wandb_inference.circuit_breaker import CircuitBreaker
from langchain_wandb_inference.concurrency import AdaptiveConcurrency
from langchain_wandb_inference.errors import DEFAULT_BASE_URL, KEYS_URL, classify
from langchain_wandb_inference.fallback import FallbackPolicy
from langchain_wandb_inference.models import (
    Lifecycle,
    ModelInfo,
    WBModel,
    model_info,
    model_profile,
)
from langchain_wandb_inference.pipeline import Call, Notify, Policy
from langchain_wandb_inference.retry import RetryPolicy

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
    "prompt_cache_options",
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
                f"WANDB_PROJECT={env_project!r} names no team: set WANDB_ENTITY to your "
                'team, or pass project="team/project" to ChatWBInference.'
            )
            raise ValueError(msg)
        project = env_project if "/" in env_project else f"{entity}/{env_project}"
        source = "WANDB_ENTITY/WANDB_PROJECT"
    parts = project.split("/")
    if len(parts) != 2 or not all(p.strip() and p == p.strip() for p in parts):
        msg = (
            f"{source} must have the form 'team/project' (your W&B team or entity, a "
            f"slash, and a project name, without spaces), got {project!r}."
        )
        raise ValueError(msg)
    return project


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


def _rough_tokens(messages: Sequence[BaseMessage]) -> int:
    """A cheap prompt-size estimate (4 characters a token) for the budget floor.

    Text only: an image's base64 bytes are not tokens.
    """
    return sum(len(m.text) for m in messages) // 4


def _refuse_responses_api_options(values: Mapping[str, Any]) -> None:
    """Fail loudly on options that would route to ``/v1/responses`` (absent on W&B)."""
    for name in _RESPONSES_ONLY:
        if values.get(name) not in (None, False):
            msg = (
                f"{name}= selects OpenAI's Responses API, which W&B Inference does not "
                "serve (it has Chat Completions only). Remove it; for reasoning models "
                "use reasoning_effort= or enable_thinking=."
            )
            raise ValueError(msg)
    if values.get("output_version") == "responses/v1":
        msg = 'output_version="responses/v1" needs the Responses API, which W&B does not serve.'
        raise ValueError(msg)


def _resolve_connection(values: dict[str, Any]) -> None:
    """Key, base URL, project and async HTTP client, from W&B's settings only."""
    key = values.get("api_key", values.get("openai_api_key")) or os.environ.get("WANDB_API_KEY")
    if not key:
        msg = (
            "No W&B API key: set the WANDB_API_KEY environment variable or pass "
            f"api_key= to ChatWBInference. Create a key at {KEYS_URL}."
        )
        raise ValueError(msg)
    values["api_key"] = key
    values.pop("openai_api_key", None)
    base_url = values.pop("openai_api_base", None) or values.get("base_url")
    values["base_url"] = base_url or os.environ.get("WANDB_INFERENCE_BASE_URL") or DEFAULT_BASE_URL
    values["project"] = resolve_project(values.get("project"))
    timeout = values.get("timeout", values.get("request_timeout", DEFAULT_TIMEOUT))
    custom = any(values.get(n) for n in ("http_async_client", "async_client", "openai_proxy"))
    if not custom and isinstance(timeout, int | float | None) and not proxies_configured():
        values["http_async_client"] = shared_async_client(values["base_url"], timeout)


def _resolve_policies(values: dict[str, Any]) -> None:
    """Policies from their serialized settings; ``max_retries`` becomes our retry policy.

    The SDK's own retries are always off, so exactly one layer retries.
    """
    for name, policy_type in _POLICY_FIELDS.items():
        if isinstance(values.get(name), dict):  # as written by to_json
            values[name] = policy_type(**values[name])
    max_retries = values.pop("max_retries", None)
    if max_retries is not None and "retry" not in values:
        values["retry"] = RetryPolicy(max_attempts=max_retries + 1) if max_retries else None
    values["max_retries"] = 0
    if values.get("budget_usd") is not None and values.get("budget") is not None:
        msg = "Pass either budget_usd= (this model's own) or budget= (shared), not both."
        raise ValueError(msg)


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
        api_key: W&B API key; defaults to ``WANDB_API_KEY``.
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
    openai_api_key: SecretStr | None = Field(
        alias="api_key", default_factory=secret_from_env("WANDB_API_KEY", default=None)
    )
    """W&B API key (``WANDB_API_KEY``)."""
    openai_api_base: str | None = Field(default=None, alias="base_url")
    """Base URL (``WANDB_INFERENCE_BASE_URL``, else W&B's public endpoint)."""
    project: str | None = Field(default=None, repr=False)
    """``team/project`` sent as ``OpenAI-Project`` (else ``WANDB_ENTITY``/``WANDB_PROJECT``)."""
    openai_proxy: str | None = None
    """An explicit proxy URL; unlike ChatOpenAI, ``OPENAI_PROXY`` is never read."""
    request_timeout: float | tuple[float, float] | Any | None = Field(
        default=DEFAULT_TIMEOUT, alias="timeout"
    )
    """Seconds per request (ChatOpenAI's default is none: a hung server blocks forever)."""
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

    # hide_input_in_errors: a validation error must never echo the api_key it was given.
    model_config = ConfigDict(populate_by_name=True, hide_input_in_errors=True)

    # -- configuration --------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _resolve_wandb_settings(cls, values: Any) -> Any:
        """Resolve key, URL and project from W&B's settings before the clients are built.

        Runs before ``BaseChatOpenAI.validate_environment`` (which builds the clients)
        so that no ``OPENAI_*`` variable can supply the key, URL or retries.
        """
        if not isinstance(values, dict):
            return values
        values = dict(values)
        _refuse_responses_api_options(values)
        _resolve_connection(values)
        _resolve_policies(values)
        if isinstance(values.get("model"), WBModel):
            values["model"] = values["model"].value
        if values.get("cache_salt") == "":
            msg = "cache_salt must be a non-empty string (or None)."
            raise ValueError(msg)
        return values

    @model_validator(mode="after")
    def _configure_wandb_clients(self) -> Self:
        """Send the project header, and no OpenAI org/project from the environment.

        The ``openai`` SDK reads ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID`` and would send
        them to any base URL: an OpenAI project ID would reach W&B as the team/project.
        """
        self.openai_organization = None
        for client in (self.root_client, self.root_async_client):
            if client is not None:
                client.organization = None
                client.project = self.project
        if self.budget_usd is not None:
            self.budget = Budget(self.budget_usd)
        self._add_version("langchain-wandb-inference", __version__)
        _warn_lifecycle_once(self.model_name)
        return self

    # -- LangChain conventions ------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "chat-wandb-inference"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Serialize the key as a reference to ``WANDB_API_KEY``, never its value."""
        return {"api_key": "WANDB_API_KEY", "openai_api_key": "WANDB_API_KEY"}

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
        """Models the service lists now (``GET /models``), joined with the catalog."""
        try:
            page = self.root_client.models.list()
        except Exception as exc:
            _raise_mapped(exc, None)
        return _joined(page.data)

    async def alist_models(self) -> list[ListedModel]:
        """Async twin of :meth:`list_models`."""
        try:
            page = await self.root_async_client.models.list()
        except Exception as exc:
            _raise_mapped(exc, None)
        return _joined(page.data)

    # -- the call path: policies composed once for every path ------------------------

    def _policies(self) -> list[Policy]:
        """The pipeline, outermost first; a new policy is one line here."""
        chain: list[Policy | None] = [
            self.budget,
            FallbackPolicy(tuple(self.fallback_models)) if self.fallback_models else None,
            self.retry,
            self.circuit_breaker,
            AdaptiveConcurrency(self.max_concurrency) if self.limit_concurrency else None,
        ]
        return [policy for policy in chain if policy is not None]

    def _new_call(self, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> Call:
        deadline = self.retry.deadline if self.retry else None
        return Call(
            model=str(kwargs.get("model") or self.model_name),
            base_url=str(self.openai_api_base),
            project=self.project,
            deadline=None if deadline is None else time.monotonic() + deadline,
            request_timeout=kwargs.get("timeout", self.request_timeout),
            prompt_tokens=_rough_tokens(messages) if self.budget is not None else 0,
        )

    def _plan(self, call: Call) -> pipeline.Plan[Any]:
        return pipeline.compose(self._policies())(call)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._new_call(messages, kwargs)

        def send(attempt: Call) -> ChatResult:
            generate = super(ChatWBInference, self)._generate
            try:
                return generate(messages, stop, run_manager, **_for_attempt(kwargs, attempt))
            except openai.APIStatusError as exc:
                instead = _function_calling_instead(kwargs, exc, attempt.model)
                if instead is None:
                    raise
                return _as_json_schema_answer(
                    generate(messages, stop, run_manager, **_for_attempt(instead, attempt))
                )

        result: ChatResult = pipeline.run(self._plan(call), send, _notifier(run_manager))
        call.finish(*_answer_usage(result, call))
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._new_call(messages, kwargs)

        async def send(attempt: Call) -> ChatResult:
            agenerate = super(ChatWBInference, self)._agenerate
            try:
                return await agenerate(messages, stop, run_manager, **_for_attempt(kwargs, attempt))
            except openai.APIStatusError as exc:
                instead = _function_calling_instead(kwargs, exc, attempt.model)
                if instead is None:
                    raise
                return _as_json_schema_answer(
                    await agenerate(messages, stop, run_manager, **_for_attempt(instead, attempt))
                )

        result: ChatResult = await pipeline.arun(
            self._plan(call), send, _async_notifier(run_manager)
        )
        call.finish(*_answer_usage(result, call))
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._new_call(messages, kwargs)

        def open_stream(attempt: Call) -> tuple[ChatGenerationChunk | None, Iterator[Any]]:
            chunks = super(ChatWBInference, self)._stream(
                messages, stop, run_manager, **_for_attempt(kwargs, attempt)
            )
            return next(chunks, None), chunks  # a failure before the first chunk is retried

        first, rest = pipeline.run(self._plan(call), open_stream, _notifier(run_manager))
        tally = _StreamTally(call)
        try:
            if first is not None:
                yield tally.see(first)
            for chunk in _mapped(rest, call):
                yield tally.see(chunk)
        finally:
            rest.close()
            tally.finish()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._new_call(messages, kwargs)

        async def open_stream(
            attempt: Call,
        ) -> tuple[ChatGenerationChunk | None, AsyncIterator[Any]]:
            chunks = super(ChatWBInference, self)._astream(
                messages, stop, run_manager, **_for_attempt(kwargs, attempt)
            )
            return await anext(chunks, None), chunks

        first, rest = await pipeline.arun(
            self._plan(call), open_stream, _async_notifier(run_manager)
        )
        tally = _StreamTally(call)
        try:
            if first is not None:
                yield tally.see(first)
            try:
                async for chunk in rest:
                    yield tally.see(chunk)
            except Exception as exc:
                _raise_mapped(exc, call.model)
        finally:
            await rest.aclose()
            tally.finish()


_POLICY_FIELDS: dict[str, Any] = {"retry": RetryPolicy, "circuit_breaker": CircuitBreaker}


def _settings(policy: Any) -> dict[str, Any]:
    """A policy dataclass's constructor arguments, for serialization."""
    return {f.name: getattr(policy, f.name) for f in fields(policy) if f.init}


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


def _answer_usage(result: ChatResult, call: Call) -> tuple[str, Mapping[str, Any] | None]:
    """Which model answered, and its usage, for the policies' finalizers."""
    message = result.generations[0].message if result.generations else None
    model = (result.llm_output or {}).get("model_name") or call.model
    usage = getattr(message, "usage_metadata", None)
    return str(model), usage


class _StreamTally:
    """Follows a stream for the finalizers: the answering model and the final usage."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.model = call.model
        self.usage: dict[str, Any] | None = None

    def see(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        usage = getattr(chunk.message, "usage_metadata", None)
        if usage:
            self.usage = dict(usage)
        self.model = str(chunk.message.response_metadata.get("model_name") or self.model)
        return chunk

    def finish(self) -> None:
        self.call.finish(self.model, self.usage)


def _raise_mapped(exc: Exception, model: str | None) -> NoReturn:
    """Re-raise a failure outside the pipeline (mid-stream, listing) as W&B's typed error."""
    mapped = classify(exc, model=model)
    if mapped is exc:
        raise exc
    raise mapped from exc


def _mapped(chunks: Iterator[ChatGenerationChunk], call: Call) -> Iterator[ChatGenerationChunk]:
    """The stream's chunks; a failure after the first is raised, typed, never restarted."""
    try:
        yield from chunks
    except Exception as exc:
        _raise_mapped(exc, call.model)


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
