"""Where ChatWBInference is *meant* to differ from ChatOpenAI, test by test, and why.

Each entry marks the upstream tests it matches ``xfail(strict=True)`` -- so one that
starts passing fails the run and the entry gets removed -- or, only where a test cannot
meaningfully run here, ``skip``.  An upstream test matching no entry must pass.  Genuine
regressions (things a user swapping ChatOpenAI for ChatWBInference would lose) are
never listed here: they stay failing until the package is fixed.

Patterns match ``<path under unit_tests>::<test id>``; ``*`` is the only wildcard
(brackets in parametrize ids are literal).  ``raises`` narrows an xfail to one
exception type, so a test that starts failing for another reason is not excused.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from pytest_socket import SocketBlockedError

CM = "chat_models/"


@dataclass(frozen=True)
class Expected:
    """Upstream tests matching ``pattern`` differ on purpose, for ``reason``."""

    pattern: str
    category: str
    reason: str
    skip: bool = False
    raises: type[BaseException] | None = None


def _each(
    category: str,
    reason: str,
    *patterns: str,
    skip: bool = False,
    raises: type[BaseException] | None = None,
) -> tuple[Expected, ...]:
    return tuple(Expected(p, category, reason, skip, raises) for p in patterns)


# -- cannot meaningfully run here (skipped) --------------------------------------------

NOT_UNDER_TEST = _each(
    "not under test",
    "tests another langchain-openai class (AzureChatOpenAI, the ChatGPT-subscription "
    "Codex model, OpenAI LLM, embeddings) or the package's exports, not ChatOpenAI",
    f"{CM}test_azure.py::*",
    f"{CM}test_azure_standard.py::*",
    f"{CM}test_codex.py::*",
    f"{CM}test_imports.py::*",
    "test_secrets.py::test_openai_secrets",
    "test_secrets.py::test_openai_embeddings_secrets",
    "test_secrets.py::test_azure_*",
    "test_load.py::test_load*_openai_llm",
    "test_token_counts.py::test_openai_get_num_tokens[*]",
    skip=True,
)
# (Parametrized cases whose argument is another langchain-openai class are skipped
# the same way by conftest.py, e.g. test_secrets.py::...[OpenAIEmbeddings].)

OFFLINE = _each(
    "needs network",
    "token counting loads tiktoken's BPE files from openaipublic.blob.core.windows.net; "
    "unit tests are offline (ChatOpenAI fails the same way here)",
    f"{CM}test_base.py::test__get_encoding_model[*]",
    f"{CM}test_base.py::test_get_num_tokens_from_messages*",
    "test_token_counts.py::test_chat_openai_get_num_tokens[*]",
    skip=True,
)

# -- meant differences (xfail strict) --------------------------------------------------

_REFUSED = (
    "W&B serves Chat Completions only: ChatWBInference refuses the Responses API and its "
    "options (use_responses_api, reasoning, include, truncation, context_management, "
    "use_previous_response_id, output_version='responses/v1', also from LC_OUTPUT_VERSION) "
    "when constructed"
)
RESPONSES_REFUSED = _each(
    "Responses API",
    _REFUSED,
    f"{CM}test_base.py::test_profile_mid_conversation_tools_follow_responses_api[*-True]",
    f"{CM}test_base.py::test_openai_*_surfaces_gateway_metadata[True]",
    f"{CM}test_base.py::test_minimal_reasoning_effort_payload[*-True]",
    f"{CM}test_base.py::test_responses_api_payload_excludes_stop[*]",
    f"{CM}test_base.py::test_output_version_compat",
    f"{CM}test_base.py::test_verbosity_parameter_payload",
    f"{CM}test_base.py::test_responses_payload_does_not_mutate_text_model_kwargs",
    f"{CM}test_base.py::test_responses_api_payload_drops_lc_auto_ids",
    f"{CM}test_base.py::test__construct_responses_api_input_multiple_message_types",
    f"{CM}test_base.py::test__construct_responses_api_input_message_type_on_all_roles",
    f"{CM}test_base.py::test_mcp_tracing",
    f"{CM}test_base.py::test_get_request_payload_use_previous_response_id",
    f"{CM}test_base.py::test_structured_output_verbosity[*]",
    f"{CM}test_base.py::test_gpt_5_temperature[True]",
    f"{CM}test_base.py::test_gpt_5_temperature_case_insensitive[*-True]",
    f"{CM}test_base.py::test_infer_use_responses_api[True-*]",
    *(
        f"{CM}test_base.py::test_infer_use_responses_api[{explicit}-kwargs{i}]"
        for explicit in ("None", "False")
        for i in range(6)  # output_version / context_management / include / reasoning /...
    ),
    f"{CM}test_base.py::test_inferred_responses_api_bind_tools_strict",
    f"{CM}test_base.py::test_infer_use_responses_api_from_output_version_env",
    f"{CM}test_base.py::test_gpt_5_1_temperature_with_reasoning_effort_none[*]",
    f"{CM}test_base.py::test_context_overflow_error_*_responses_api",
    f"{CM}test_base.py::test_get_request_payload_responses_api_input_file_blocks_passthrough",
    f"{CM}test_base.py::test_async_tool_*",
    f"{CM}test_base.py::test_additional_tools_block_becomes_input_item[*]",
    f"{CM}test_base.py::test_additional_tools_block_empties_message",
    f"{CM}test_base.py::test_additional_tools_block_does_not_mutate_input_content",
    f"{CM}test_base.py::test_additional_tools_block_off_system_message_raises[*-True-*]",
    f"{CM}test_base.py::test_additional_tools_block_on_ai_message_not_rejected",
    f"{CM}test_base.py::test_unrecognized_system_block_dropped_with_warning[*]",
    f"{CM}test_base.py::test_unrecognized_user_block_dropped_silently",
    f"{CM}test_base.py::test_configuration_update_block_*",
    f"{CM}test_base.py::test_with_structured_output_include_raw_reports_responses_refusal",
    f"{CM}test_base.py::test_with_structured_output_raises_on_responses_content_filter",
    f"{CM}test_prompt_cache_key.py::test_prompt_cache_*_responses_api*",
    f"{CM}test_refusal.py::test_empty_refusal_from_other_provider_not_sent[True]",
    f"{CM}test_refusal.py::test_streamed_responses_refusal_raises*",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_init",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_init_streaming",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_init_time",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_bind_tool_pydantic",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_with_structured_output[*]",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_standard_params*",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_serdes",
    f"{CM}test_responses_stream.py::test_responses_stream*",
    f"{CM}test_responses_stream.py::test_responses_astream*",
    "test_tools.py::test_custom_tool",
    raises=ValidationError,
)
RESPONSES_NOT_ROUTED = _each(
    "Responses API",
    "ChatWBInference never routes to /v1/responses (W&B has none), whatever ChatOpenAI "
    "would infer it from: previous_response_id, Responses-only OpenAI models (gpt-5-pro, "
    "*-codex, gpt-6 with tools), web_search tools, text=",
    f"{CM}test_base.py::test_get_request_payload_explicit_previous_response_id",
    f"{CM}test_base.py::test_infer_use_responses_api[None-kwargs6]",
    f"{CM}test_base.py::test_infer_use_responses_api[None-kwargs7]",
    f"{CM}test_base.py::test_infer_use_responses_api_remains_dynamic[*]",
    f"{CM}test_base.py::test_gpt_6_tools_use_responses_api",
    raises=AssertionError,
)
BUILT_IN_TOOLS = _each(
    "Responses API",
    "built-in tools (apply_patch, tool_search, namespace) exist on OpenAI's Responses API "
    "only; ChatWBInference accepts function tools only and says so",
    f"{CM}test_base.py::test_apply_patch_passthrough",
    f"{CM}test_base.py::test_tool_search_*",
    f"{CM}test_base.py::test_namespace_passthrough",
    raises=ValueError,
)
OPENAI_MODELS = _each(
    "OpenAI model names",
    "OpenAI's model-specific behaviour: profiles come from W&B's catalog (no gpt-5 / "
    "gpt-6 entries), and o-series system messages are not turned into 'developer'",
    f"{CM}test_base.py::test_profile",
    f"{CM}test_base.py::test_gpt_5_reasoning_effort_levels",
    f"{CM}test_base.py::test_gpt_6_astra_reasoning_effort_levels",
    f"{CM}test_base.py::test_profile_mid_conversation_tools_follow_responses_api[*-False]",
    f"{CM}test_base.py::test__get_request_payload",
    raises=AssertionError,
)
OPENAI_ENV = _each(
    "OPENAI_* environment",
    "ChatWBInference reads WANDB_API_KEY / WANDB_INFERENCE_BASE_URL only: OPENAI_* "
    "variables and the LangSmith gateway (LANGSMITH_GATEWAY*, which fronts OpenAI) are "
    "deliberately ignored so an OpenAI setting can never redirect W&B traffic or keys",
    f"{CM}test_base_standard.py::TestOpenAIStandard::test_init_from_env",
    f"{CM}test_responses_standard.py::TestOpenAIResponses::test_init_from_env",
    f"{CM}test_base.py::test_langsmith_gateway_*",
    raises=AssertionError,
)
DEFAULTS = _each(
    "W&B defaults",
    "stream_usage is on whatever the base URL or client (W&B always sends usage)",
    f"{CM}test_base.py::test_openai_stream",
    raises=AssertionError,
)
VALIDATION = _each(
    "W&B validation",
    "the test's dummy base_url='foo' is refused at construction (base_url must be an "
    "http(s) URL); past it, timeout=None would be another client than the default, "
    "which is 60 s, not ChatOpenAI's None",
    f"{CM}test_base.py::test_openai_client_caching",
    raises=ValidationError,
)
HTTP_CLIENTS = _each(
    "W&B HTTP clients",
    "ChatWBInference builds its own sync and async clients (one pool per process and per "
    "event loop, so fork() and repeated asyncio.run() are safe), so langchain-openai's "
    "client builders, which these tests spy on, never run.  That the same socket "
    "options and proxies reach those clients is checked by test_parity.py",
    f"{CM}test_client_utils.py::test_default_path_opt_out_is_strict_noop",
    f"{CM}test_client_utils.py::test_http_socket_options_none_vs_empty_tuple_vs_populated",
    f"{CM}test_client_utils.py::test_openai_proxy_branch_applies_socket_options",
    f"{CM}test_client_utils.py::test_client_build_skips_transport_on_proxy_env_default_shape",
    f"{CM}test_client_utils.py::test_client_build_applies_socket_options_when_user_opts_in",
    raises=AssertionError,
)
WIRE = _each(
    "wire names",
    "max_tokens= / max_completion_tokens= are sent as max_tokens, which ChatOpenAI "
    "renames max_completion_tokens (W&B accepts both: the key differs, not the limit)",
    f"{CM}test_base.py::test_minimal_reasoning_effort_payload[*-False]",
    raises=KeyError,
)
IDENTITY = _each(
    "W&B identity",
    "ChatWBInference is its own class: model_provider / ls_provider 'wandb', serialized "
    "under ['langchain_wandb_inference', 'chat_models', 'ChatWBInference'] with the key "
    "as WANDB_API_KEY -- so upstream's snapshot differs, and langchain-core's load() "
    "needs valid_namespaces=['langchain_wandb_inference'] (true of any partner package "
    "outside core's mapping)",
    f"{CM}test_base.py::test_convert_chunk_to_generation_chunk_v1_keeps_string_content",
    f"{CM}test_base_standard.py::TestOpenAIStandard::test_serdes",
    "test_load.py::test_load*_openai_chat",
    "test_load.py::test_load*_runnable_sequence_prompt_model",
)
RELIABILITY = (
    *_each(
        "W&B reliability",
        "with streaming=True an invoke streams inside ChatWBInference's retry loop (a stream "
        "cut before anything reached the caller is retried), so _should_stream() is False "
        "unless a streaming callback handler reads the chunks; tokens still reach callbacks",
        f"{CM}test_base.py::test_streaming_attribute_should_stream[*]",
        raises=AssertionError,
    ),
    *_each(
        "W&B reliability",
        "after a timeout ChatWBInference retries by streaming (W&B's advice for slow "
        "answers); the test mocks only the non-streaming call, so the retry leaves the mock "
        "and is stopped by this gate's network guard.  The errors are classified as "
        "upstream expects (WBTimeoutError / WBConnectionError: ModelTimeoutError / "
        "ModelConnectionError, is_retryable)",
        f"{CM}test_base.py::test_openai_transport_error_classification",
        raises=SocketBlockedError,
    ),
)

EXPECTED: tuple[Expected, ...] = (
    *NOT_UNDER_TEST,
    *OFFLINE,
    *RESPONSES_REFUSED,
    *RESPONSES_NOT_ROUTED,
    *BUILT_IN_TOOLS,
    *OPENAI_MODELS,
    *OPENAI_ENV,
    *DEFAULTS,
    *VALIDATION,
    *HTTP_CLIENTS,
    *WIRE,
    *IDENTITY,
    *RELIABILITY,
)
