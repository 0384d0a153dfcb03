"""Tests for the model catalog (langchain_wandb_inference.models / _catalog_data)."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from langchain_wandb_inference._catalog_data import REASONING_HISTORY_IDS
from langchain_wandb_inference.models import (
    Lifecycle,
    ModelInfo,
    Price,
    ReasoningMode,
    WBModel,
    all_models,
    is_lora_artifact,
    model_info,
    model_profile,
    suggest_model_id,
)

CATALOG = all_models()
CATALOG_IDS = [info.id for info in CATALOG]
LORA_URI = "wandb-artifact:///my-team/my-project/my-adapter:latest"


# --- catalog integrity --------------------------------------------------------------------


def test_ids_unique_even_ignoring_case() -> None:
    assert len(CATALOG_IDS) == len(set(CATALOG_IDS))
    # Case-insensitive uniqueness is what makes suggest_model_id unambiguous.
    assert len({i.casefold() for i in CATALOG_IDS}) == len(CATALOG_IDS)


def test_enum_and_catalog_cover_the_same_ids() -> None:
    assert {m.value for m in WBModel} == set(CATALOG_IDS)
    assert len(WBModel) == len(CATALOG)


@pytest.mark.parametrize("member", list(WBModel), ids=lambda m: m.name)
def test_every_member_has_info(member: WBModel) -> None:
    info = member.info
    assert isinstance(info, ModelInfo)
    assert info.id == member.value
    assert info.name
    assert info.source
    assert isinstance(info.as_of, datetime.date)


def test_all_models_is_the_catalog() -> None:
    models = all_models()
    assert isinstance(models, tuple)
    assert [m.id for m in models] == CATALOG_IDS


def test_contract_section7_models_all_present() -> None:
    named_in_contract = {
        # seeds launch catalog
        "deepseek-ai/DeepSeek-R1-0528",
        "deepseek-ai/DeepSeek-V3-0324",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "microsoft/Phi-4-mini-instruct",
        # retirement chains
        "Qwen/Qwen2.5-14B-Instruct",
        "moonshotai/Kimi-K2-Instruct",
        "moonshotai/Kimi-K2-Instruct-0905",
        "zai-org/GLM-4.5",
        "zai-org/GLM-5-FP8",
        "deepseek-ai/DeepSeek-V4-Flash",
        "deepseek-ai/DeepSeek-V4-Pro",
        "ibm-granite/granite-4.1-8b",
        # GA 2026-09-29
        "openai/gpt-oss-120b",
        "openai/gpt-oss-20b",
        "deepseek-ai/DeepSeek-V4-Flash-0731",
        "deepseek-ai/DeepSeek-V4-Pro-0813",
        "deepseek-ai/DeepSeek-V4.1-Flash",
        "zai-org/GLM-5.2",
        "google/gemma-4-26B-A4B-it",
        "Qwen/Qwen3.8-27B",
        "moonshotai/Kimi-K2.6",
        "ibm-granite/granite-4.2-8b",
        # also listed in 2026
        "deepseek-ai/DeepSeek-V3.1",
        "google/gemma-4-31B-it",
        "meta-llama/Llama-3.1-70B-Instruct",
        "MiniMaxAI/MiniMax-M2.5",
        "MiniMaxAI/MiniMax-M3",
        "moonshotai/Kimi-K2.5",
        "moonshotai/Kimi-K2.7-Code",
        "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
        "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B",
        "nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B",
        "OpenPipe/Qwen3-14B-Instruct",
        "Qwen/Qwen3-235B-A22B-Instruct-2507",
        "Qwen/Qwen3-235B-A22B-Thinking-2507",
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
        "Qwen/Qwen3-Coder-480B-A35B-Instruct",
        "Qwen/Qwen3.5-35B-A3B",
        "Qwen/Qwen3.6-35B-A3B",
        "Qwen/Qwen3.6-27B",
        "JetBrains/Mellum2-12B-A2.5B-Instruct",
        "zai-org/GLM-5.1",
        "zai-org/GLM-5.3-Flash",
    }
    assert named_in_contract == set(CATALOG_IDS)


def test_figures_are_sane() -> None:
    for info in CATALOG:
        assert info.context_window is None or info.context_window >= 8_000, info.id
        assert info.max_output_tokens is None or info.max_output_tokens > 0, info.id
        if info.price is not None:
            assert info.price.input > 0 and info.price.output > 0, info.id
            if info.price.cached_input is not None:
                assert info.price.cached_input < info.price.input, info.id
        assert datetime.date(2025, 6, 1) <= info.as_of <= datetime.date(2026, 12, 31), info.id


# --- lifecycle and replacements -----------------------------------------------------------


def _chain(model_id: str) -> list[str]:
    seen = [model_id]
    info = model_info(model_id)
    while info is not None and info.replacement is not None:
        assert info.replacement not in seen, f"replacement cycle: {[*seen, info.replacement]}"
        seen.append(info.replacement)
        info = model_info(info.replacement)
    return seen


@pytest.mark.parametrize("info", [i for i in CATALOG if i.replacement], ids=lambda i: i.id)
def test_replacement_chain_ends_at_a_servable_catalog_model(info: ModelInfo) -> None:
    chain = _chain(info.id)
    for model_id in chain:
        assert model_info(model_id) is not None, f"{model_id} (in {chain}) not in catalog"
    end = model_info(chain[-1])
    assert end is not None
    assert end.lifecycle is not Lifecycle.RETIRED, chain


def test_documented_chains() -> None:
    assert _chain("zai-org/GLM-4.5") == ["zai-org/GLM-4.5", "zai-org/GLM-5-FP8", "zai-org/GLM-5.1"]
    assert _chain(WBModel.LLAMA_4_SCOUT_17B_16E_INSTRUCT)[-1] == "Qwen/Qwen3.5-35B-A3B"
    assert _chain("Qwen/Qwen2.5-14B-Instruct")[-1] == "OpenPipe/Qwen3-14B-Instruct"
    assert _chain("moonshotai/Kimi-K2-Instruct")[-1] == "moonshotai/Kimi-K2.5"
    assert _chain("moonshotai/Kimi-K2-Instruct-0905")[-1] == "moonshotai/Kimi-K2.5"
    assert _chain("deepseek-ai/DeepSeek-V4-Flash")[-1] == "deepseek-ai/DeepSeek-V4-Flash-0731"
    assert _chain("deepseek-ai/DeepSeek-V4-Pro")[-1] == "deepseek-ai/DeepSeek-V4-Pro-0813"


def test_retired_models_have_date_or_documented_absence() -> None:
    retired = [i for i in CATALOG if i.lifecycle is Lifecycle.RETIRED]
    assert len(retired) == 12  # 4 launch models + 8 in the retirement chains
    for info in retired:
        assert info.retired_on is not None or "date undocumented" in info.source, info.id


def test_only_retired_or_deprecated_models_carry_retirement_data() -> None:
    for info in CATALOG:
        if info.lifecycle not in (Lifecycle.RETIRED, Lifecycle.DEPRECATED):
            assert info.retired_on is None, info.id
            assert info.replacement is None, info.id


@pytest.mark.parametrize(
    ("model_id", "retired_on"),
    [
        ("deepseek-ai/DeepSeek-R1-0528", datetime.date(2026, 3, 4)),
        ("deepseek-ai/DeepSeek-V3-0324", datetime.date(2026, 3, 4)),
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", datetime.date(2026, 4, 21)),
        ("microsoft/Phi-4-mini-instruct", datetime.date(2026, 7, 20)),
        ("zai-org/GLM-5-FP8", datetime.date(2026, 5, 11)),
        ("deepseek-ai/DeepSeek-V4-Flash", datetime.date(2026, 10, 5)),
        ("deepseek-ai/DeepSeek-V4-Pro", datetime.date(2026, 10, 5)),
        ("ibm-granite/granite-4.1-8b", datetime.date(2026, 10, 5)),
    ],
)
def test_retirement_dates_from_contract(model_id: str, retired_on: datetime.date) -> None:
    info = model_info(model_id)
    assert info is not None
    assert info.lifecycle is Lifecycle.RETIRED
    assert info.retired_on == retired_on


def test_lifecycle_groups() -> None:
    ga = {i.id for i in CATALOG if i.lifecycle is Lifecycle.GENERALLY_AVAILABLE}
    assert len(ga) == 12
    assert "meta-llama/Llama-3.1-8B-Instruct" in ga
    assert "openai/gpt-oss-120b" in ga
    also_listed = model_info("zai-org/GLM-5.1")
    assert also_listed is not None and also_listed.lifecycle is Lifecycle.UNKNOWN
    assert "uncertain" in also_listed.source


# --- figures hand-checked against the contract text ---------------------------------------


@pytest.mark.parametrize(
    ("model_id", "price"),
    [
        ("deepseek-ai/DeepSeek-V4-Pro-0813", Price(1.31, 3.96, 0.044)),
        ("deepseek-ai/DeepSeek-V4-Flash-0731", Price(0.13, 0.28, 0.07)),
        ("meta-llama/Llama-3.1-8B-Instruct", Price(0.22, 0.22)),
        ("meta-llama/Llama-3.3-70B-Instruct", Price(0.71, 0.71)),
        ("openai/gpt-oss-120b", Price(0.03, 0.17)),
        ("zai-org/GLM-5.2", Price(0.76, 2.42, 0.14)),
        ("Qwen/Qwen3.8-27B", Price(0.40, 3.00, 0.15)),
        ("zai-org/GLM-5.1", Price(1.40, 4.40, 0.26)),
        ("OpenPipe/Qwen3-14B-Instruct", Price(0.05, 0.22)),
        # seed-era prices
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", Price(0.17, 0.66)),
        ("deepseek-ai/DeepSeek-R1-0528", Price(1.35, 5.40)),
        ("microsoft/Phi-4-mini-instruct", Price(0.08, 0.35)),
    ],
)
def test_prices_match_contract(model_id: str, price: Price) -> None:
    info = model_info(model_id)
    assert info is not None
    assert info.price == price


def test_unpublished_figures_are_none_not_zero() -> None:
    for model_id in ("moonshotai/Kimi-K2.5", "zai-org/GLM-5.3-Flash", "zai-org/GLM-4.5"):
        info = model_info(model_id)
        assert info is not None and info.price is None, model_id
    for model_id in ("MiniMaxAI/MiniMax-M3", "zai-org/GLM-5.3-Flash", "zai-org/GLM-4.5"):
        info = model_info(model_id)
        assert info is not None and info.context_window is None, model_id
    assert all(i.max_output_tokens is None for i in CATALOG)  # none is published


@pytest.mark.parametrize(
    ("model", "context_window", "vision"),
    [
        (WBModel.LLAMA_3_1_8B_INSTRUCT, 131_072, False),  # GA table beats the seeds' "128K"
        (WBModel.LLAMA_3_3_70B_INSTRUCT, 128_000, False),
        (WBModel.DEEPSEEK_V4_PRO_0813, 1_048_576, False),
        (WBModel.DEEPSEEK_V4_1_FLASH, 1_048_576, True),
        (WBModel.LLAMA_4_SCOUT_17B_16E_INSTRUCT, 64_000, True),
        (WBModel.DEEPSEEK_R1_0528, 161_000, False),
        (WBModel.OPENPIPE_QWEN3_14B_INSTRUCT, 32_800, False),
        (WBModel.KIMI_K2_6, 262_144, True),
    ],
)
def test_context_and_vision(model: WBModel, context_window: int, vision: bool) -> None:
    assert model.info.context_window == context_window
    assert model.info.vision is vision


def test_lora_bases_match_section8() -> None:
    assert {i.id for i in CATALOG if i.lora_base} == {
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-70B-Instruct",
        "openai/gpt-oss-120b",
        "OpenPipe/Qwen3-14B-Instruct",
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
    }


# --- reasoning ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "mode"),
    [
        (WBModel.GPT_OSS_120B, ReasoningMode.ALWAYS),
        (WBModel.KIMI_K2_6, ReasoningMode.ALWAYS),
        (WBModel.QWEN3_235B_A22B_THINKING_2507, ReasoningMode.ALWAYS),
        (WBModel.GLM_5_1, ReasoningMode.DEFAULT_ON),
        (WBModel.GRANITE_4_2_8B, ReasoningMode.DEFAULT_ON),
        (WBModel.DEEPSEEK_V4_PRO_0813, ReasoningMode.DEFAULT_ON),
        (WBModel.DEEPSEEK_V4_PRO, ReasoningMode.DEFAULT_OFF),
        (WBModel.GEMMA_4_31B_IT, ReasoningMode.DEFAULT_OFF),
        (WBModel.MINIMAX_M3, ReasoningMode.ADAPTIVE),
        (WBModel.LLAMA_3_1_8B_INSTRUCT, ReasoningMode.NONE),
        (WBModel.QWEN3_235B_A22B_INSTRUCT_2507, ReasoningMode.NONE),
    ],
)
def test_reasoning_modes_from_section4(model: WBModel, mode: ReasoningMode) -> None:
    assert model.info.reasoning is mode


def test_reasoning_properties() -> None:
    gpt = WBModel.GPT_OSS_120B.info
    assert gpt.is_reasoning and not gpt.reasoning_toggleable and gpt.send_reasoning_back_default

    glm = WBModel.GLM_5_1.info
    assert glm.is_reasoning and glm.reasoning_toggleable and glm.send_reasoning_back_default

    flash_off = WBModel.DEEPSEEK_V4_FLASH.info  # default off: nothing to send back by default
    assert flash_off.is_reasoning and flash_off.reasoning_toggleable
    assert not flash_off.send_reasoning_back_default

    llama = WBModel.LLAMA_3_1_8B_INSTRUCT.info
    assert not llama.is_reasoning and not llama.reasoning_toggleable
    assert not llama.send_reasoning_back_default

    # Reasoning by default but deliberately excluded (R1 rejects it; Nemotron unverified).
    assert not WBModel.DEEPSEEK_R1_0528.info.send_reasoning_back_default
    assert not WBModel.NVIDIA_NEMOTRON_3_SUPER_120B_A12B_FP8.info.send_reasoning_back_default
    assert WBModel.MINIMAX_M3.info.send_reasoning_back_default  # adaptive


def test_send_back_rule_is_data_plus_mode() -> None:
    # The allow-list only names real, reasoning-by-default catalog models.
    assert set(REASONING_HISTORY_IDS) <= set(CATALOG_IDS)
    for info in CATALOG:
        expected = info.id in REASONING_HISTORY_IDS and info.reasoning in (
            ReasoningMode.ALWAYS,
            ReasoningMode.DEFAULT_ON,
            ReasoningMode.ADAPTIVE,
        )
        assert info.send_reasoning_back_default is expected, info.id
        if info.id in REASONING_HISTORY_IDS:
            assert expected, f"{info.id} listed but does not reason by default"
    # A hand-made entry for a new model is conservative.
    new = dataclasses.replace(WBModel.KIMI_K2_6.info, id="moonshotai/Kimi-K3")
    assert not new.send_reasoning_back_default


# --- lookups ------------------------------------------------------------------------------


def test_model_info_with_enum_and_string() -> None:
    by_enum = model_info(WBModel.GPT_OSS_120B)
    by_str = model_info("openai/gpt-oss-120b")
    assert by_enum is not None and by_enum is by_str
    assert by_enum.id == "openai/gpt-oss-120b"


def test_wrong_case_is_not_an_exact_match_but_gets_a_suggestion() -> None:
    wrong = "meta-llama/llama-3.1-8b-instruct"
    # The service is case-sensitive (404), so the default lookup does not pretend to know it.
    assert model_info(wrong) is None
    assert suggest_model_id(wrong) == "meta-llama/Llama-3.1-8B-Instruct"
    relaxed = model_info(wrong, case_sensitive=False)
    assert relaxed is not None and relaxed.id == "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("OPENAI/GPT-OSS-120B", "openai/gpt-oss-120b"),
        ("  openai/gpt-oss-20b ", "openai/gpt-oss-20b"),
        ("wandb/zai-org/GLM-5.1", "zai-org/GLM-5.1"),
        ("wandb/zai-org/glm-5.1", "zai-org/GLM-5.1"),
        ("Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct"),
        ("qwen3-14b-instruct", "OpenPipe/Qwen3-14B-Instruct"),
        ("openai/gpt-oss-120b", None),  # already exact: nothing to fix
        ("openai/gpt-oss-999b", None),
        ("other-org/Llama-3.3-70B-Instruct", None),  # wrong org is not a near miss
        (LORA_URI, None),
        ("", None),
    ],
)
def test_suggest_model_id(given: str, expected: str | None) -> None:
    assert suggest_model_id(given) == expected


def test_lora_artifacts() -> None:
    assert is_lora_artifact(LORA_URI)
    assert is_lora_artifact("wandb-artifact:///team/project/adapter:v3")
    assert not is_lora_artifact("meta-llama/Llama-3.1-8B-Instruct")
    assert not is_lora_artifact("artifact/wandb-artifact")
    assert model_info(LORA_URI) is None
    assert model_info(LORA_URI, case_sensitive=False) is None
    assert model_profile(LORA_URI) == {}


def test_unknown_model() -> None:
    assert model_info("acme/brand-new-model") is None
    assert model_info("acme/brand-new-model", case_sensitive=False) is None
    assert model_profile("acme/brand-new-model") == {}


def test_enums_format_as_their_value() -> None:
    assert str(WBModel.LLAMA_3_1_8B_INSTRUCT) == "meta-llama/Llama-3.1-8B-Instruct"
    assert f"{WBModel.GPT_OSS_120B}" == "openai/gpt-oss-120b"
    assert f"{WBModel.GPT_OSS_120B:>22}" == "   openai/gpt-oss-120b"
    as_str: str = WBModel.GPT_OSS_120B  # a str subclass: usable wherever an ID string is
    assert as_str == "openai/gpt-oss-120b"
    assert WBModel("openai/gpt-oss-20b") is WBModel.GPT_OSS_20B
    assert f"{Lifecycle.GENERALLY_AVAILABLE}" == "general-availability"
    assert str(ReasoningMode.DEFAULT_ON) == "default-on"


def test_dataclasses_are_frozen() -> None:
    info = WBModel.GPT_OSS_120B.info
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.context_window = 1  # type: ignore[misc]
    assert info.price is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.price.input = 0.0  # type: ignore[misc]


# --- LangChain profile --------------------------------------------------------------------


def test_profile_for_ga_reasoning_model() -> None:
    assert model_profile(WBModel.GPT_OSS_120B) == {
        "name": "gpt-oss-120b",
        "status": "active",
        "open_weights": True,
        "max_input_tokens": 131_072,
        "text_inputs": True,
        "image_inputs": False,
        "image_url_inputs": False,
        "text_outputs": True,
        "tool_calling": True,
        "tool_choice": True,
        "tool_call_streaming": True,
        "structured_output": True,
        "reasoning_output": True,
    }


def test_profile_for_vision_model_and_string_id() -> None:
    profile = model_profile("moonshotai/Kimi-K2.6")
    assert profile["image_inputs"] is True
    assert profile["image_url_inputs"] is True
    assert profile["max_input_tokens"] == 262_144
    assert profile["reasoning_output"] is True


def test_profile_omits_unknowns() -> None:
    retired = model_profile(WBModel.GLM_4_5)
    assert retired["status"] == "retired"
    assert "max_input_tokens" not in retired  # context unpublished
    assert "max_output_tokens" not in retired
    uncertain = model_profile(WBModel.MINIMAX_M3)
    assert "status" not in uncertain  # lifecycle UNKNOWN: no claim
    assert uncertain["reasoning_output"] is True
    assert model_profile(WBModel.LLAMA_3_1_8B_INSTRUCT)["reasoning_output"] is False


def test_profile_keys_are_declared_by_langchain() -> None:
    from typing import get_type_hints

    from langchain_core.language_models import ModelProfile

    declared = set(get_type_hints(ModelProfile))
    for info in CATALOG:
        assert set(model_profile(info.id)) <= declared, info.id


def test_catalog_data_imports_nothing_from_the_package() -> None:
    import ast
    from pathlib import Path

    import langchain_wandb_inference._catalog_data as data

    tree = ast.parse(Path(data.__file__).read_text())
    imported = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ]
    assert not [m for m in imported if m.startswith("langchain_wandb_inference")]
