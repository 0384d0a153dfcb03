"""W&B Inference model catalog: IDs, limits, prices, reasoning modes, lifecycle.

Quick use::

    from langchain_wandb_inference.models import WBModel, model_info, model_profile

    f"{WBModel.GPT_OSS_120B}"                # "openai/gpt-oss-120b", usable as model=...
    info = model_info("openai/gpt-oss-120b")  # ModelInfo, or None if not in the catalog
    info.context_window, info.price, info.reasoning, info.lifecycle, info.replacement
    model_profile(WBModel.GPT_OSS_120B)       # LangChain ModelProfile dict ({} if unknown)

What to expect:

* The catalog is a snapshot (see ``_catalog_data`` for sources and dates). W&B changes it
  monthly, so any model ID string may be used with the service; an ID missing here just
  has no metadata (``model_info`` -> ``None``, ``model_profile`` -> ``{}``).
* IDs are case-sensitive on the service (a case mismatch is a 404), so lookups are exact by
  default. ``suggest_model_id`` turns a near miss (wrong case, missing org prefix, LiteLLM
  ``wandb/`` prefix, stray spaces) into the correctly spelled catalog ID.
* LoRA adapters are addressed by ``wandb-artifact:///<team>/<project>/<name>:<version>``;
  ``is_lora_artifact`` recognises them and they have no catalog entry (billed like their base).
* Retired models stay in the catalog so callers can explain the 404 and follow
  ``replacement`` to the suggested successor.
* ``None`` in a figure means the sources do not give it, never zero.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from langchain_core.language_models import ModelProfile

from langchain_wandb_inference._catalog_data import CATALOG, REASONING_HISTORY_IDS

__all__ = [
    "Lifecycle",
    "ModelInfo",
    "Price",
    "ReasoningMode",
    "WBModel",
    "all_models",
    "is_lora_artifact",
    "model_info",
    "model_profile",
    "suggest_model_id",
    "unlisted_models",
]

LORA_ARTIFACT_SCHEME = "wandb-artifact:"
"""Scheme prefix of LoRA adapter model IDs (``wandb-artifact:///team/project/name:version``)."""


class _ValueStrEnum(str, Enum):
    """A str enum that formats as its value.

    Why: Python 3.11 changed ``format()`` of mixed-in enums to ``Class.MEMBER``; IDs and
    stage names must print as the wire value on every supported Python.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class Lifecycle(_ValueStrEnum):
    """Lifecycle stage (contract §7); values match the public catalog's ``lifecycleStage``.

    ``UNKNOWN`` is for models the sources list without a dependable stage: they may be
    served, deprecated or gone, so treat them as "try it, expect a possible 404".
    """

    EXPERIMENTAL = "experimental"
    GENERALLY_AVAILABLE = "general-availability"
    DEPRECATED = "deprecated"
    RETIRED = "retired"
    UNKNOWN = "unknown"


class ReasoningMode(_ValueStrEnum):
    """How a model reasons (contract §4), which decides what a client may send.

    ``DEFAULT_ON``/``DEFAULT_OFF``/``ADAPTIVE`` models accept
    ``chat_template_kwargs={"enable_thinking": bool}``; ``ALWAYS`` models ignore or reject
    it. ``NONE`` means no reasoning mode is documented for the model, so a client should not
    send the toggle (it may 422) but should still read a ``reasoning`` field if one arrives.
    """

    NONE = "none"
    ALWAYS = "always"
    DEFAULT_ON = "default-on"
    DEFAULT_OFF = "default-off"
    ADAPTIVE = "adaptive"


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; ``cached_input`` is ``None`` where no cache price is published."""

    input: float
    output: float
    cached_input: float | None = None


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What the catalog knows about one model ID, with its provenance.

    Figures are ``None`` when no source gives them. ``tool_calling`` and
    ``structured_output`` default to ``True`` because the contract documents both as
    service features and names no model lacking them; a 422 from the service is the
    authority. ``source`` names the documents the entry came from and ``as_of`` the date of
    that snapshot, so stale data is recognisable.
    """

    id: str
    name: str
    context_window: int | None
    max_output_tokens: int | None = None
    vision: bool = False
    tool_calling: bool = True
    reasoning: ReasoningMode = ReasoningMode.NONE
    lifecycle: Lifecycle
    retired_on: datetime.date | None = None
    replacement: str | None = None
    price: Price | None = None
    lora_base: bool = False
    structured_output: bool = True
    source: str
    as_of: datetime.date

    @property
    def is_reasoning(self) -> bool:
        """Whether the model can produce reasoning text at all."""
        return self.reasoning is not ReasoningMode.NONE

    @property
    def reasoning_toggleable(self) -> bool:
        """Whether ``enable_thinking`` switches reasoning on/off for this model."""
        return self.reasoning in _TOGGLEABLE

    @property
    def send_reasoning_back_default(self) -> bool:
        """Whether earlier turns' reasoning should go back to the model by default.

        Rule (conservative): ``True`` only if the model reasons by default (``ALWAYS``,
        ``DEFAULT_ON`` or ``ADAPTIVE``) AND its family's chat template or vendor guide is
        known to take prior reasoning on assistant turns (listed, with reasons, in
        ``_catalog_data.REASONING_HISTORY_IDS``). Why: in tool loops these models continue
        their chain of thought across calls and degrade without it, while templates that do
        not expect it may reject or mis-render it (DeepSeek-R1 refuses it outright).
        ``DEFAULT_OFF`` models and models outside the list get ``False``.
        """
        return self.reasoning in _REASONS_BY_DEFAULT and self.id in REASONING_HISTORY_IDS


_TOGGLEABLE = frozenset(
    {ReasoningMode.DEFAULT_ON, ReasoningMode.DEFAULT_OFF, ReasoningMode.ADAPTIVE}
)
_REASONS_BY_DEFAULT = frozenset(
    {ReasoningMode.ALWAYS, ReasoningMode.DEFAULT_ON, ReasoningMode.ADAPTIVE}
)


class WBModel(_ValueStrEnum):
    """Model IDs in the catalog, for autocompletion; any other ID string works too.

    Includes retired models so old code gets a clear lookup (lifecycle, replacement)
    rather than a bare name error.
    """

    # Launch catalog (seeds, June 2025)
    DEEPSEEK_R1_0528 = "deepseek-ai/DeepSeek-R1-0528"
    DEEPSEEK_V3_0324 = "deepseek-ai/DeepSeek-V3-0324"
    LLAMA_3_1_8B_INSTRUCT = "meta-llama/Llama-3.1-8B-Instruct"
    LLAMA_3_3_70B_INSTRUCT = "meta-llama/Llama-3.3-70B-Instruct"
    LLAMA_4_SCOUT_17B_16E_INSTRUCT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    PHI_4_MINI_INSTRUCT = "microsoft/Phi-4-mini-instruct"
    # Generally available 2026-09-29
    GPT_OSS_120B = "openai/gpt-oss-120b"
    GPT_OSS_20B = "openai/gpt-oss-20b"
    DEEPSEEK_V4_FLASH_0731 = "deepseek-ai/DeepSeek-V4-Flash-0731"
    DEEPSEEK_V4_PRO_0813 = "deepseek-ai/DeepSeek-V4-Pro-0813"
    DEEPSEEK_V4_1_FLASH = "deepseek-ai/DeepSeek-V4.1-Flash"
    GLM_5_2 = "zai-org/GLM-5.2"
    GEMMA_4_26B_A4B_IT = "google/gemma-4-26B-A4B-it"
    QWEN3_8_27B = "Qwen/Qwen3.8-27B"
    KIMI_K2_6 = "moonshotai/Kimi-K2.6"
    GRANITE_4_2_8B = "ibm-granite/granite-4.2-8b"
    # Listed in 2026, stage by late 2026 uncertain
    DEEPSEEK_V3_1 = "deepseek-ai/DeepSeek-V3.1"
    GEMMA_4_31B_IT = "google/gemma-4-31B-it"
    LLAMA_3_1_70B_INSTRUCT = "meta-llama/Llama-3.1-70B-Instruct"
    MINIMAX_M2_5 = "MiniMaxAI/MiniMax-M2.5"
    MINIMAX_M3 = "MiniMaxAI/MiniMax-M3"
    KIMI_K2_5 = "moonshotai/Kimi-K2.5"
    KIMI_K2_7_CODE = "moonshotai/Kimi-K2.7-Code"
    NVIDIA_NEMOTRON_3_SUPER_120B_A12B_FP8 = "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8"
    NVIDIA_NEMOTRON_3_ULTRA_550B_A55B = "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B"
    NVIDIA_NEMOTRON_3_5_LIGHTNING_30B_A3B = "nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B"
    OPENPIPE_QWEN3_14B_INSTRUCT = "OpenPipe/Qwen3-14B-Instruct"
    QWEN3_235B_A22B_INSTRUCT_2507 = "Qwen/Qwen3-235B-A22B-Instruct-2507"
    QWEN3_235B_A22B_THINKING_2507 = "Qwen/Qwen3-235B-A22B-Thinking-2507"
    QWEN3_30B_A3B_INSTRUCT_2507 = "Qwen/Qwen3-30B-A3B-Instruct-2507"
    QWEN3_CODER_480B_A35B_INSTRUCT = "Qwen/Qwen3-Coder-480B-A35B-Instruct"
    QWEN3_5_35B_A3B = "Qwen/Qwen3.5-35B-A3B"
    QWEN3_6_35B_A3B = "Qwen/Qwen3.6-35B-A3B"
    QWEN3_6_27B = "Qwen/Qwen3.6-27B"
    MELLUM2_12B_A2_5B_INSTRUCT = "JetBrains/Mellum2-12B-A2.5B-Instruct"
    GLM_5_1 = "zai-org/GLM-5.1"
    GLM_5_3_FLASH = "zai-org/GLM-5.3-Flash"
    # Retired (retirement chains in contract §7)
    QWEN2_5_14B_INSTRUCT = "Qwen/Qwen2.5-14B-Instruct"
    KIMI_K2_INSTRUCT = "moonshotai/Kimi-K2-Instruct"
    KIMI_K2_INSTRUCT_0905 = "moonshotai/Kimi-K2-Instruct-0905"
    GLM_4_5 = "zai-org/GLM-4.5"
    GLM_5_FP8 = "zai-org/GLM-5-FP8"
    DEEPSEEK_V4_FLASH = "deepseek-ai/DeepSeek-V4-Flash"
    DEEPSEEK_V4_PRO = "deepseek-ai/DeepSeek-V4-Pro"
    GRANITE_4_1_8B = "ibm-granite/granite-4.1-8b"

    @property
    def info(self) -> ModelInfo:
        """Catalog entry for this member (every member has one)."""
        return _by_id()[self.value]


def _entry(row: Mapping[str, Any]) -> ModelInfo:
    """One catalog row (plain data) as a ``ModelInfo``."""
    price = row.get("price")
    return ModelInfo(
        **{
            **row,
            "reasoning": ReasoningMode(row.get("reasoning", ReasoningMode.NONE)),
            "lifecycle": Lifecycle(row["lifecycle"]),
            "price": None if price is None else Price(*price),
        }
    )


@functools.lru_cache(maxsize=1)
def _by_id() -> dict[str, ModelInfo]:
    return {info.id: info for info in map(_entry, CATALOG)}


@functools.lru_cache(maxsize=1)
def _by_folded_id() -> dict[str, str]:
    return {model_id.casefold(): model_id for model_id in _by_id()}


@functools.lru_cache(maxsize=1)
def _by_folded_short_name() -> dict[str, str]:
    # "Llama-3.1-8B-Instruct" -> "meta-llama/Llama-3.1-8B-Instruct"; ambiguous names dropped.
    seen: dict[str, list[str]] = {}
    for model_id in _by_id():
        seen.setdefault(model_id.rsplit("/", 1)[-1].casefold(), []).append(model_id)
    return {short: ids[0] for short, ids in seen.items() if len(ids) == 1}


def _as_id(model_id: str | WBModel) -> str:
    return model_id.value if isinstance(model_id, WBModel) else model_id


def is_lora_artifact(model_id: str) -> bool:
    """Whether ``model_id`` is a W&B LoRA artifact URI rather than a catalog model ID.

    Why: adapters share the endpoint with base models but have no catalog entry, so callers
    must not warn "unknown model" for them.
    """
    return model_id.strip().lower().startswith(LORA_ARTIFACT_SCHEME)


def model_info(model_id: str | WBModel, *, case_sensitive: bool = True) -> ModelInfo | None:
    """Catalog entry for ``model_id``, or ``None`` (unknown ID or LoRA artifact).

    Exact match by default, because the service is case-sensitive: a wrong-case ID 404s,
    so pretending it is known would hide the error. With ``case_sensitive=False`` a
    case-insensitive match is tried after the exact one (the entry's ``id`` is the correct
    spelling). For fixing a typo use ``suggest_model_id``.
    """
    model_id = _as_id(model_id)
    if is_lora_artifact(model_id):
        return None
    info = _by_id().get(model_id)
    if info is None and not case_sensitive:
        folded = _by_folded_id().get(model_id.casefold())
        info = _by_id()[folded] if folded is not None else None
    return info


def suggest_model_id(model_id: str) -> str | None:
    """Correct catalog ID for a near miss, else ``None``.

    Near misses: wrong case, surrounding whitespace, LiteLLM's ``wandb/`` prefix, or the
    name without its org (``Llama-3.1-8B-Instruct``). Returns ``None`` when ``model_id``
    is already an exact catalog ID (nothing to fix), a LoRA artifact, or unknown. Why: a
    404 on a case slip is the most common self-inflicted error with W&B IDs.
    """
    if model_id in _by_id() or is_lora_artifact(model_id):
        return None
    candidate = model_id.strip()
    if candidate.casefold().startswith("wandb/"):
        candidate = candidate[len("wandb/") :]
    folded = candidate.casefold()
    return _by_folded_id().get(folded) or (
        _by_folded_short_name().get(folded) if "/" not in folded else None
    )


def all_models() -> tuple[ModelInfo, ...]:
    """Every catalog entry, retired ones included (filter on ``lifecycle``)."""
    return tuple(_by_id().values())


def unlisted_models(served: Collection[str]) -> list[ModelInfo]:
    """Catalog models not retired and not in ``served`` (``GET /models`` IDs), sorted.

    Why: a retired model's absence from the listing is expected; any other catalog model
    missing from it is news, which ``wb-inference models`` flags and the probe reports.
    """
    missing = (i for i in all_models() if i.id not in served and i.lifecycle != Lifecycle.RETIRED)
    return sorted(missing, key=lambda i: i.id.casefold())


_PROFILE_STATUS: dict[Lifecycle, str] = {
    Lifecycle.GENERALLY_AVAILABLE: "active",
    Lifecycle.EXPERIMENTAL: "experimental",
    Lifecycle.DEPRECATED: "deprecated",
    Lifecycle.RETIRED: "retired",
}


def model_profile(model_id: str | WBModel) -> ModelProfile:
    """LangChain ``ModelProfile`` for a catalog model; ``{}`` when unknown.

    Why: LangChain agents and middleware read ``max_input_tokens``, ``structured_output``
    and friends from ``chat_model.profile``. Keys whose value is unknown are left out
    rather than guessed (``status`` for ``UNKNOWN`` lifecycle, ``max_*`` when ``None``).
    """
    info = model_info(model_id)
    if info is None:
        return {}
    profile: ModelProfile = {
        "name": info.name,
        "open_weights": True,
        "text_inputs": True,
        "image_inputs": info.vision,
        "image_url_inputs": info.vision,
        "text_outputs": True,
        "tool_calling": info.tool_calling,
        "tool_choice": info.tool_calling,
        "tool_call_streaming": info.tool_calling,
        "structured_output": info.structured_output,
        "reasoning_output": info.is_reasoning,
    }
    status = _PROFILE_STATUS.get(info.lifecycle)
    if status is not None:
        profile["status"] = status
    if info.context_window is not None:
        profile["max_input_tokens"] = info.context_window
    if info.max_output_tokens is not None:
        profile["max_output_tokens"] = info.max_output_tokens
    return profile
