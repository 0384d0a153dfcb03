"""What the package assumes about W&B Inference, each with the contract's expected value.

Why: no machine this project is built on can reach W&B, so every behaviour rests on the
published contract (``wb-inference-api.md``, cited here as "§N") and on the emulator
built from it.  ``wb-inference probe`` observes each assumption on a real service and
reports *expected (contract) -> observed -> ok/differs*; ``wb-inference --emulator
probe`` observes the same on the emulator, and a test holds it all ok, so the expected
values below and the emulator cannot drift apart silently.

This module is the one place the expected values live.  An :class:`Assumption` names:

* ``expected``: the observations that agree with the contract, in the probe's
  normalised wording (the probe's steps in ``steps`` produce one string per
  assumption; the first value is the contract's own statement);
* ``source``: the contract section it comes from;
* ``emulator`` and ``package``: where the emulator produces it and what in the package
  relies on it, which ``python -m langchain_wandb_inference.testing.learn`` points a
  maintainer to when a report says it differs;
* ``scope``: ``"service"`` (observed once) or which probed models it applies to,
  decided from the catalog;
* ``offline``: why the emulator cannot show it (reported "not observable offline",
  never ok); kept short on purpose.

Error observations read ``<status> <class the package maps it to>`` and, where the
contract quotes the message, ``: "<message>"`` with the model ID as ``<model>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from langchain_wandb_inference.models import ModelInfo, ReasoningMode

OK = "ok"
DIFFERS = "differs"
OFFLINE = "not observable offline"
BUDGET = "skipped (budget)"
SKIPPED = "skipped"
FAILED = "error"
"""Verdicts.  ``SKIPPED`` carries a reason (nothing to observe); ``FAILED`` means the
probe could not make the observation (a connection error, say)."""

Scope = Literal[
    "service", "model", "reasoning", "plain", "toggleable", "always", "tools",
    "structured", "cached", "uncached",
]  # fmt: skip

_SCOPES: dict[str, Callable[[ModelInfo | None], bool]] = {
    "model": lambda info: True,
    "reasoning": lambda info: info is not None and info.is_reasoning,
    "plain": lambda info: info is None or not info.is_reasoning,
    "toggleable": lambda info: info is not None and info.reasoning_toggleable,
    "always": lambda info: info is not None and info.reasoning is ReasoningMode.ALWAYS,
    "tools": lambda info: info is None or info.tool_calling,
    "structured": lambda info: info is None or info.structured_output,
    "cached": lambda info: _cached_price(info),
    "uncached": lambda info: not _cached_price(info),
}


def _cached_price(info: ModelInfo | None) -> bool:
    return info is not None and info.price is not None and info.price.cached_input is not None


@dataclass(frozen=True)
class Assumption:
    """One thing the package takes for granted about the service (see the module doc)."""

    name: str
    expected: tuple[str, ...]
    how_to_observe: str
    source: str
    emulator: str
    package: str
    scope: Scope = "service"
    offline: str | None = None

    def applies_to(self, info: ModelInfo | None) -> bool:
        """Whether a per-model assumption concerns a model with this catalog entry."""
        return self.scope != "service" and _SCOPES[self.scope](info)

    def judge(self, observed: str) -> str:
        """``ok`` when the observation is one the contract expects, else ``differs``."""
        return OK if observed in self.expected else DIFFERS


_AUTH = "testing/emulator.py `Emulator._auth`"
_ERRORS = "errors.py `classify`"
_CHAT = "testing/emulator.py `Emulator._message`"
_STREAM = "testing/emulator.py `Emulator._stream`"
_SYNTH = "testing/synthetic.py `SyntheticBackend.complete`"
_VALIDATE = "testing/emulator.py `_validate`"

ASSUMPTIONS: tuple[Assumption, ...] = (
    # --- authentication and project (§1, §5) ---------------------------------------
    Assumption(
        "auth.bad_key",
        (
            '401 WBAuthenticationError: "Authentication failed"',
            '401 WBAuthenticationError: "Invalid Authentication"',
        ),
        "POST /chat/completions with a wrong key",
        "§5 (401: 2026 and 2025 wordings)",
        f"{_AUTH}, `_AUTH_FAILED`",
        "errors.py `WBAuthenticationError`",
    ),
    Assumption(
        "auth.no_key",
        ('401 WBAuthenticationError: "Missing bearer authentication in header"',),
        "POST /chat/completions without an Authorization header",
        "§5 (observed 401 body)",
        f"{_AUTH}, `_AUTH_MISSING`",
        "errors.py `_auth_hints`",
    ),
    Assumption(
        "project.missing",
        ("200",),
        "the same request without OpenAI-Project",
        "§1 (2026: optional; default entity, project 'inference')",
        f"{_AUTH} (the header is optional)",
        "chat_models.py `resolve_project` (project optional)",
    ),
    Assumption(
        "project.malformed",
        ("401 WBAuthenticationError",),
        "OpenAI-Project without a slash",
        "§1 (a wrong entity/project gives 401)",
        f"{_AUTH} (`_PROJECT`)",
        "chat_models.py `resolve_project` (refuses it before sending)",
    ),
    Assumption(
        "project.unknown",
        ("401 WBAuthenticationError",),
        "OpenAI-Project naming a team/project that does not exist",
        "§1 (a wrong entity/project gives 401)",
        f"{_AUTH} (`Emulator(projects=...)`)",
        "errors.py `_auth_hints`",
    ),
    # --- GET /models (§2, §7) ---------------------------------------------------
    Assumption(
        "models.shape",
        ("as documented",),
        'GET /models: {"object": "list", "data": [{id, object: "model", created, owned_by, root}]}',
        "§2",
        "testing/emulator.py `Emulator.__init__` (`_models_body`)",
        "chat_models.py `list_models`",
    ),
    Assumption(
        "models.catalog_listed",
        ("every catalog model not retired is listed",),
        "GET /models against the catalog's models that are not retired",
        "§2, §7 (the catalog changes monthly)",
        "testing/emulator.py `_profiles` (serves every catalog model not retired)",
        "_catalog_data.py `CATALOG` (lifecycle, retired_on)",
    ),
    Assumption(
        "models.not_in_catalog",
        ("none",),
        "GET /models: listed IDs the catalog does not know",
        "§7 (the catalog changes monthly)",
        "testing/emulator.py `_profiles`",
        "_catalog_data.py `CATALOG` (add the new models)",
    ),
    Assumption(
        "models.retired_listed",
        ("none",),
        "GET /models: listed IDs the catalog calls retired",
        "§7 (retired models fail with 404)",
        "testing/emulator.py `_profiles`",
        "_catalog_data.py `CATALOG` (lifecycle)",
    ),
    # --- errors it can provoke without harm (§3, §5) ----------------------------
    Assumption(
        "errors.unknown_model",
        (
            '404 WBModelNotFoundError: "The model `<model>` does not exist"',
            '404 WBModelNotFoundError: "The requested resource was not found"',
        ),
        "POST /chat/completions for a model that does not exist",
        "§5 (404)",
        "testing/emulator.py `Emulator._chat` (unknown model)",
        "errors.py `WBModelNotFoundError`, `_not_found_hints`",
    ),
    Assumption(
        "errors.invalid_param",
        ("422 WBUnprocessableEntityError, detail names temperature",),
        "temperature=5 (the documented range is 0-2)",
        "§3, §5 (422 with detail)",
        _VALIDATE,
        "errors.py `WBUnprocessableEntityError`, `_param_from_detail`",
    ),
    # --- response headers (§5) ---------------------------------------------------
    Assumption(
        "headers.request_id",
        ("absent",),
        "response headers of a chat answer: a request id (name and shape only)",
        "§5 (no response header is documented)",
        "testing/emulator.py `_http` (sends no x-request-id)",
        "errors.py `_request_id` (quoted in error messages when present)",
    ),
    Assumption(
        "headers.rate_limit",
        ("none",),
        "response headers of a chat answer: x-ratelimit-*, retry-after (names only)",
        "§5 (no Retry-After or x-ratelimit-* header is documented)",
        "testing/emulator.py `_http`",
        "policies/_retry.py (honours Retry-After when sent)",
    ),
    # --- per model: plain answer and reasoning (§4) ------------------------------
    Assumption(
        "chat.shape",
        ("as documented",),
        "one answer: object chat.completion, one choice with an assistant message, "
        "finish_reason, usage {prompt_tokens, completion_tokens, total_tokens}",
        "§4",
        _CHAT,
        "chat_models.py `_create_chat_result`",
        scope="model",
    ),
    Assumption(
        "reasoning.field",
        ("message.reasoning",),
        "which message field carries a reasoning model's reasoning",
        "§4 (`reasoning` since April 2026; `reasoning_content` before)",
        f"{_CHAT}; `Emulator(legacy_reasoning_field=...)`",
        "chat_models.py `_attach_reasoning` (reads both names)",
        scope="reasoning",
    ),
    Assumption(
        "reasoning.plain_model",
        ("message.reasoning: null",),
        "the reasoning field of a model that does not reason",
        "§4 (`null` for non-reasoning models)",
        _CHAT,
        "chat_models.py `_attach_reasoning`",
        scope="plain",
    ),
    Assumption(
        "reasoning.thinking_off",
        ("no reasoning",),
        "enable_thinking=False (chat_template_kwargs) on a model that can toggle it",
        "§3, §4 (toggles the models that are not 'always on')",
        "testing/emulator.py `_reasons`",
        "_catalog_data.py `reasoning`; chat_models.py `enable_thinking`",
        scope="toggleable",
    ),
    Assumption(
        "reasoning.thinking_off_always",
        ("reasoning present", "422 WBUnprocessableEntityError"),
        "enable_thinking=False on an 'always on' reasoning model",
        "§4 (the toggle is for models that are not 'always on')",
        "testing/emulator.py `_reasons`",
        "_catalog_data.py `reasoning`; models.py `ReasoningMode`",
        scope="always",
    ),
    # --- per model: streaming (§4, §10) ------------------------------------------
    Assumption(
        "stream.first_chunk",
        ("role only",),
        "stream=true: what the first chunk's delta carries",
        "§10 (role-only first chunk)",
        _STREAM,
        "chat_models.py `_carries_content` (a role-only chunk is not content)",
        scope="model",
    ),
    Assumption(
        "stream.usage_chunk",
        ("final chunk with choices [] and usage",),
        "stream_options.include_usage=true: where usage arrives",
        "§4 (a final chunk with empty choices carries usage)",
        f"{_STREAM} (the usage event)",
        "chat_models.py `stream_usage`, `_StreamTally`",
        scope="model",
    ),
    Assumption(
        "stream.done",
        ("data: [DONE]",),
        "how the stream ends",
        "§10 (OpenAI framing; a missing [DONE] means truncation)",
        _STREAM,
        "the openai SDK's stream reader",
        scope="model",
    ),
    Assumption(
        "stream.framing",
        ("data: lines only",),
        "SSE line kinds besides data: (comments, event:, id:, retry:)",
        "§4, §10 (all valid SSE)",
        "testing/emulator.py `_sse`",
        "the openai SDK's SSE decoder",
        scope="model",
    ),
    Assumption(
        "stream.reasoning_delta",
        ("delta.reasoning",),
        "which delta field carries streamed reasoning",
        "§4 (`delta.reasoning`)",
        f"{_STREAM}; `Emulator(legacy_reasoning_field=...)`",
        "chat_models.py `_convert_chunk_to_generation_chunk`, `_attach_reasoning`",
        scope="reasoning",
    ),
    # --- per model: tools (§3, §4) ------------------------------------------------
    Assumption(
        "tools.shape",
        ("OpenAI shape",),
        "a forced function call: tool_calls [{id, type: function, function: {name, "
        "arguments: JSON text}}]",
        "§4 (OpenAI shape)",
        f"{_CHAT}; {_SYNTH}",
        "langchain-openai's tool-call parsing",
        scope="tools",
    ),
    Assumption(
        "tools.id_style",
        ("call_…",),
        "the tool-call id's prefix (the rest as a shape)",
        "§4 (OpenAI shape)",
        "testing/synthetic.py `_call_id`",
        "testing/recording.py `_canonical` (renumbers ids for replay)",
        scope="tools",
    ),
    Assumption(
        "tools.stream_fragments",
        ("id and name first, arguments in fragments",),
        "the same call streamed: where id and name come, how arguments are split",
        "§4 (streamed as delta.tool_calls, OpenAI shape)",
        f"{_STREAM} (tool-call events)",
        "langchain-openai's tool_call_chunks",
        scope="tools",
    ),
    Assumption(
        "tools.parallel",
        ("accepted",),
        "parallel_tool_calls=true with two tools (the number of calls is evidence)",
        "§3 (not documented; an OpenAI field LangChain sends)",
        _VALIDATE,
        "chat_models.py `bind_tools(parallel_tool_calls=...)` (inherited)",
        scope="tools",
    ),
    # --- per model: structured output (§3) ---------------------------------------
    Assumption(
        "format.json_schema",
        ("JSON matching the schema",),
        "response_format json_schema (strict) with one required string",
        "§3 (use structured output instead of JSON mode)",
        f"{_SYNTH} (`_answer`); `_validate_format`",
        "_catalog_data.py `structured_output`; chat_models.py `with_structured_output`",
        scope="structured",
    ),
    Assumption(
        "format.json_object",
        ("a JSON object",),
        "response_format json_object",
        "§3",
        f"{_SYNTH} (`_answer`); `_validate_format`",
        "chat_models.py `with_structured_output(method='json_mode')`",
        scope="structured",
    ),
    # --- per model: prompt cache (§3, §4, §7) ------------------------------------
    Assumption(
        "cache.cached_tokens",
        ("cached tokens reported",),
        "usage.prompt_tokens_details.cached_tokens on a repeat of a ~1,200-token prefix",
        "§4 (on some models), §7 (models with a cached-input price)",
        "testing/emulator.py `Emulator._usage`, `_cached`",
        "usage.py `estimate_cost` (cached price); _catalog_data.py `price`",
        scope="cached",
    ),
    Assumption(
        "cache.not_reported",
        ("none reported",),
        "the same repeat on a model without a cached-input price",
        "§4 (on some models), §7 (no cached-input price)",
        "testing/emulator.py `Emulator._usage` (only models with a cached price)",
        "_catalog_data.py `price` (add a cached-input price)",
        scope="uncached",
    ),
    Assumption(
        "cache.salt",
        ("accepted, no cached tokens",),
        "the same prefix with a fresh cache_salt",
        "§3 (cache_salt isolates prefix-cache reuse)",
        "testing/emulator.py `Emulator._usage`; `_validate` (non-empty string)",
        "chat_models.py `cache_salt`",
        scope="model",
    ),
    Assumption(
        "logprobs",
        ("logprobs returned", "422 WBUnprocessableEntityError, detail names logprobs"),
        "logprobs=true, top_logprobs=2",
        "§3 (some models lack logprobs: 422)",
        f"{_CHAT} (always `logprobs: null`)",
        "langchain-openai's logprobs in response_metadata",
        scope="model",
        offline="the emulator does not model logprobs (it always answers logprobs: null)",
    ),
    # --- per model: the package end to end ---------------------------------------
    Assumption(
        "package.invoke",
        ("works",),
        "ChatWBInference.invoke: text, usage, model name (reasoning block on reasoning models)",
        "§4, through ChatWBInference",
        _CHAT,
        "chat_models.py `ChatWBInference._generate`",
        scope="model",
    ),
    Assumption(
        "package.stream",
        ("works",),
        "ChatWBInference.stream: text, usage once (reasoning on reasoning models)",
        "§4, through ChatWBInference",
        _STREAM,
        "chat_models.py `ChatWBInference._stream`",
        scope="model",
    ),
    Assumption(
        "package.tools",
        ("works",),
        "ChatWBInference.bind_tools(...).invoke: a parsed tool call",
        "§4, through ChatWBInference",
        _SYNTH,
        "chat_models.py (tools: langchain-openai)",
        scope="tools",
    ),
    Assumption(
        "package.structured",
        ("works",),
        "ChatWBInference.with_structured_output(schema).invoke: a dict",
        "§3, through ChatWBInference",
        _SYNTH,
        "chat_models.py `with_structured_output`, `_function_calling_instead`",
        scope="structured",
    ),
    # --- limits and overflow, last: the costliest (§5, §6, §10) -----------------
    Assumption(
        "limits.concurrency_429",
        ("429 WBConcurrencyLimitError",),
        "bursts of 2, 4, 8 requests in flight on the first probed model, until a 429",
        "§5 (429 concurrency), §6 (about 1 in flight per project observed)",
        "testing/emulator.py `Emulator._admit`, `concurrency_limit`; faults.py `concurrency_body`",
        "errors.py `WBConcurrencyLimitError`; policies/_concurrency.py",
    ),
    Assumption(
        "limits.retry_after",
        ("absent",),
        "the 429's Retry-After / retry-after-ms (shape only)",
        "§5 (no Retry-After documented; honour one if it comes)",
        "testing/faults.py `Fault(retry_after=...)`",
        "policies/_retry.py; errors.py `_parse_retry_after`",
    ),
    Assumption(
        "limits.headers",
        ("none",),
        "the 429's rate-limit headers (names only)",
        "§5 (no x-ratelimit-* header documented)",
        "testing/emulator.py `_http`",
        "policies/_concurrency.py (learns the limit from 429s only)",
    ),
    Assumption(
        "errors.context_overflow",
        ("400 WBContextOverflowError",),
        "a prompt past the context window of the smallest-context listed model "
        "(skipped when its estimated cost does not fit the budget)",
        "§10 (overflow wordings, all 400)",
        "testing/emulator.py `_backend_failure` (only a real backend has a window)",
        "errors.py `WBContextOverflowError`, `_CONTEXT_OVERFLOW_MARKERS`",
        offline="the synthetic backend has no context window: any prompt fits",
    ),
)

BY_NAME = {a.name: a for a in ASSUMPTIONS}
