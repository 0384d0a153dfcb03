"""``ChatWBInference``: LangChain's chat model for W&B Inference."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams, LanguageModelInput, ModelProfile
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tracers._streaming import _StreamingCallbackHandler
from langchain_core.utils import from_env, secret_from_env
from langchain_openai.chat_models.base import BaseChatOpenAI
from pydantic import ConfigDict, Field, InstanceOf, SecretStr, model_validator
from typing_extensions import Self

from langchain_wandb_inference import _http, _wire
from langchain_wandb_inference._answers import (
    answer_usage,
    as_json_schema_answer,
    attach_reasoning,
    clean_response_usage,
    function_calling_instead,
    prompt_tokens,
)
from langchain_wandb_inference._events import async_notifier, notifier
from langchain_wandb_inference._settings import (
    check_settings,
    refuse_responses_api_options,
    resolve_project,
    warn_lifecycle_once,
)
from langchain_wandb_inference._streams import StreamTally, carries_content
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.errors import DEFAULT_BASE_URL
from langchain_wandb_inference.models import ModelInfo, WBModel, model_info, model_profile
from langchain_wandb_inference.policies import Budget, CircuitBreaker, RetryPolicy
from langchain_wandb_inference.policies import _pipeline as pipeline
from langchain_wandb_inference.policies._budget import BudgetGuard
from langchain_wandb_inference.policies._circuit_breaker import Breaker
from langchain_wandb_inference.policies._concurrency import AdaptiveConcurrency
from langchain_wandb_inference.policies._fallback import FallbackPolicy
from langchain_wandb_inference.policies._fleet import RedisURL, state_for
from langchain_wandb_inference.policies._pipeline import Call, Notify, Policy
from langchain_wandb_inference.usage import clean_usage

__all__ = ["DEFAULT_MODEL", "ChatWBInference", "ListedModel", "resolve_project"]

logger = logging.getLogger("langchain_wandb_inference")

DEFAULT_MODEL = WBModel.LLAMA_3_1_8B_INSTRUCT.value
DEFAULT_TIMEOUT = 60.0

# W&B request fields the OpenAI SDK has no argument for: sent through ``extra_body``.
_WB_BODY_FIELDS = ("cache_salt",)


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
        refuse_responses_api_options(self)
        check_settings(self)
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
        params["default_headers"] = {**(self.default_headers or {}), **_wire.HEADERS}
        if not self.client and sync_key is not None:
            http_client = self.http_client or _http.sync_client(
                self.openai_api_base,
                self.request_timeout,
                self.http_socket_options,
                self.openai_proxy,
            )
            self.root_client = openai.OpenAI(
                api_key=sync_key, http_client=_wire.guard(http_client), **params
            )
            self.client = self.root_client.chat.completions
        if not self.async_client:
            http_client = self.http_async_client or _http.async_client(
                self.openai_api_base,
                self.request_timeout,
                self.http_socket_options,
                self.openai_proxy,
            )
            self.root_async_client = openai.AsyncOpenAI(
                api_key=async_key, http_client=_wire.guard(http_client), **params
            )
            self.async_client = self.root_async_client.chat.completions
        for client in (self.root_client, self.root_async_client):
            if client is not None:  # the SDK fills None from OPENAI_ORG_ID/OPENAI_PROJECT_ID
                client.organization, client.project = None, self.project
        self._add_version("langchain-wandb-inference", __version__)
        warn_lifecycle_once(self.model_name)
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
        """Put each earlier AI turn's reasoning back on its wire message (tool loops).

        As ``reasoning_content``, the field llama.cpp's and vLLM's chat templates read (a
        template never sees ``reasoning``: llama.cpp drops it), and as ``reasoning``,
        the name W&B documents for it.
        """
        messages = self._convert_input(input_).to_messages()
        if len(messages) != len(wire):  # not one wire message per message: leave as is
            return
        for message, sent in zip(messages, wire, strict=True):
            reasoning = message.additional_kwargs.get("reasoning_content")
            if isinstance(message, AIMessage) and reasoning:
                sent["reasoning_content"] = sent["reasoning"] = reasoning

    def _sends_reasoning_back(self, model: str) -> bool:
        if self.send_reasoning_back is not None:
            return self.send_reasoning_back
        info = model_info(model)
        return bool(info and info.send_reasoning_back_default)

    def _create_chat_result(
        self, response: Any, generation_info: dict[str, Any] | None = None
    ) -> ChatResult:
        clean_response_usage(response)
        result = super()._create_chat_result(response, generation_info)
        choices = (
            response.get("choices") if isinstance(response, dict) else response.choices
        ) or []
        for generation, choice in zip(result.generations, choices, strict=False):
            wire = choice.get("message") if isinstance(choice, dict) else choice.message
            attach_reasoning(generation.message, wire)
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
            attach_reasoning(generation.message, choices[0].get("delta"))
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
            BudgetGuard(self.budget, state, prompt_tokens(messages), max_tokens)
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

    def _should_stream(
        self,
        *,
        async_api: bool,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> bool:
        """Stream a call the caller reads as a stream; an ``invoke`` streams internally.

        With ``streaming=True``, ``invoke`` would otherwise read our stream chunk by chunk,
        so a stream cut mid-answer could not be retried although nothing reached the
        caller yet.  ``_generate`` streams inside the retry loop instead (callbacks still
        see each token).  A streaming callback handler (``astream_events``) keeps core's
        chunk-by-chunk path: there every chunk does reach a reader.
        """
        should = super()._should_stream(async_api=async_api, run_manager=run_manager, **kwargs)
        if not should or kwargs.get("stream"):
            return should
        handlers = run_manager.handlers if run_manager else []
        return any(isinstance(h, _StreamingCallbackHandler) for h in handlers)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call, plan = self._new_call(messages, kwargs)
        streamed = [bool(self.streaming or kwargs.pop("stream", False))]

        def send(attempt: Call) -> ChatResult:
            with _expecting(call, attempt, stream=streamed[0]):
                try:
                    if streamed[0]:
                        chunks = super(ChatWBInference, self)._stream(
                            messages, stop, run_manager, **_for_attempt(kwargs, attempt)
                        )
                        return generate_from_stream(chunks)
                    return self._generate_once(messages, stop, run_manager, kwargs, attempt)
                except openai.APITimeoutError:
                    streamed[0] = True  # the next attempt streams: W&B's advice for slow answers
                    raise

        result: ChatResult
        result, finish = pipeline.run(plan, send, notifier(run_manager))
        finish(*answer_usage(result, call, messages))
        return result

    def _generate_once(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
        attempt: Call,
    ) -> ChatResult:
        generate: Callable[..., ChatResult] = super()._generate
        try:
            return generate(messages, stop, run_manager, **_for_attempt(kwargs, attempt))
        except openai.APIStatusError as exc:
            instead = function_calling_instead(kwargs, exc, attempt.model)
            if instead is None:
                raise
            return as_json_schema_answer(
                generate(messages, stop, run_manager, **_for_attempt(instead, attempt))
            )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call, plan = self._new_call(messages, kwargs)
        streamed = [bool(self.streaming or kwargs.pop("stream", False))]

        async def send(attempt: Call) -> ChatResult:
            with _expecting(call, attempt, stream=streamed[0]):
                try:
                    if streamed[0]:
                        chunks = super(ChatWBInference, self)._astream(
                            messages, stop, run_manager, **_for_attempt(kwargs, attempt)
                        )
                        return await agenerate_from_stream(chunks)
                    return await self._agenerate_once(messages, stop, run_manager, kwargs, attempt)
                except openai.APITimeoutError:
                    streamed[0] = True
                    raise

        result: ChatResult
        result, finish = await pipeline.arun(plan, send, async_notifier(run_manager))
        await finish.acall(*answer_usage(result, call, messages))
        return result

    async def _agenerate_once(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
        attempt: Call,
    ) -> ChatResult:
        agenerate: Callable[..., Awaitable[ChatResult]] = super()._agenerate
        try:
            return await agenerate(messages, stop, run_manager, **_for_attempt(kwargs, attempt))
        except openai.APIStatusError as exc:
            instead = function_calling_instead(kwargs, exc, attempt.model)
            if instead is None:
                raise
            return as_json_schema_answer(
                await agenerate(messages, stop, run_manager, **_for_attempt(instead, attempt))
            )

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
            with _expecting(call, attempt, stream=True):
                for chunk in chunks:  # a failure before any content is retried
                    head.append(chunk)
                    if carries_content(chunk):
                        break
            return head, chunks

        (head, rest), finish = pipeline.run(plan, open_stream, notifier(run_manager))
        tally = StreamTally(call, finish, messages)
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
            with _expecting(call, attempt, stream=True):
                async for chunk in chunks:
                    head.append(chunk)
                    if carries_content(chunk):
                        break
            return head, chunks

        (head, rest), finish = await pipeline.arun(plan, open_stream, async_notifier(run_manager))
        tally = StreamTally(call, finish, messages)
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


class _expecting:
    """Tell the response guard (``_wire``) what this attempt's answer must be.

    A class, not ``@contextmanager``: it wraps every request.
    """

    def __init__(self, call: Call, attempt: Call, *, stream: bool) -> None:
        self.expect = _wire.Expect(stream, attempt.model, call.project, call.deadline)

    def __enter__(self) -> None:
        self.token = _wire.EXPECT.set(self.expect)

    def __exit__(self, *exc_info: object) -> None:
        _wire.EXPECT.reset(self.token)


def _for_attempt(kwargs: Mapping[str, Any], attempt: Call) -> dict[str, Any]:
    """The caller's kwargs aimed at this attempt's model, with its timeout."""
    return {**kwargs, "model": attempt.model, "timeout": attempt.timeout()}
