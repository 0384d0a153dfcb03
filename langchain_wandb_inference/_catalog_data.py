"""W&B Inference model catalog data: one plain ``dict`` per model ID.

Plain data on purpose: this module imports nothing from the package, so it can be read,
edited and reviewed as a table; ``models.py`` turns each entry into a ``ModelInfo``
(``price`` is ``(input, output[, cached_input])`` USD per 1M tokens).

Where the figures come from (nothing here was observed live):

* **seeds** - W&B's Japanese/Korean Inference docs, June 2025: the six launch models with
  human names, types (text/vision) and context windows.
* **contract** - the project's service contract (``wb-inference-api.md``), gathered from
  W&B's docs repo, CoreWeave's docs and public clients:
  §4 reasoning modes (May-Sep 2026), §7 lifecycle, the GA table of 2026-09-29 (exact
  context windows from the public catalog, USD prices per 1M tokens), the "also listed in
  2026" list, the retirement chains and the seed-era prices; §8 LoRA bases.

Conventions:

* ``None`` means no source gives the figure. Nothing is estimated: max output tokens are
  published for no model, so every ``max_output_tokens`` is ``None``.
* Context windows published as "NNNK" are stored as NNN * 1000. The exact limit may differ
  slightly either way (the same "128K" is 131,072 for Llama 3.1 8B and 128,000 for
  Llama 3.3 70B in the public catalog), so leave a margin when trimming.
* Models in the "also listed in 2026 (status by late 2026 uncertain)" list get
  ``Lifecycle.UNKNOWN``, not their last documented stage.
* A model missing from §4 gets ``ReasoningMode.NONE`` (undocumented), except DeepSeek-R1,
  which the seeds present as the reasoning model and which always emits reasoning.
* ``vision`` is ``True`` only where a source says so.
* ``as_of`` is the date of the snapshot the entry was read from: 2026-09-29 for GA-table
  rows, otherwise 2026-10-05, the newest event the contract records.
* ``name`` is the seeds' display name where there is one, otherwise the ID without its org.

The service's catalog changes monthly (models added, deprecated with at least two weeks'
notice, then retired -> 404). Update this file from the public catalog
(``https://trace.wandb.ai/inference/catalog/models``) and W&B's docs, and record the new
source and date in each entry you touch. Code must keep accepting IDs not listed here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

__all__ = ["CATALOG", "REASONING_HISTORY_IDS"]

_GA_DATE = date(2026, 9, 29)  # GA table in contract §7
_CONTRACT_DATE = date(2026, 10, 5)  # newest event recorded in the contract

_SEEDS = "seeds launch catalog 2025-06 (name, type, context)"
_SEED_PRICE = "contract §7 seed-era prices"
_GA = "contract §7 GA table 2026-09-29 (context, vision, price)"
_ALSO = "contract §7 'also listed in 2026' (stage uncertain -> UNKNOWN)"
_CHAIN = "contract §7 other retirements"
_NO_DATE = "retirement date undocumented"
_R4 = "contract §4 reasoning modes"
_R_UNDOC = "reasoning mode undocumented -> NONE"
_LORA = "contract §8 LoRA base"

# Lifecycle stages and reasoning modes, spelled as models.Lifecycle / models.ReasoningMode.
GA = "general-availability"
UNKNOWN = "unknown"
RETIRED = "retired"
ALWAYS = "always"
ON = "default-on"
OFF = "default-off"
ADAPTIVE = "adaptive"

# fmt: off
# (Kept compact by hand: one entry per model, several fields a line, like a table.)
CATALOG: tuple[dict[str, Any], ...] = (
    # --- Launch catalog (seeds, June 2025); fates from contract §7 ---------------------------
    dict(
        id="deepseek-ai/DeepSeek-R1-0528", name="DeepSeek R1-0528", context_window=161_000,
        reasoning=ALWAYS, lifecycle=RETIRED, retired_on=date(2026, 3, 4),
        price=(1.35, 5.40),
        source=f"{_SEEDS}; {_SEED_PRICE}; contract §7 retired 2026-03-04, no replacement "
        "named; reasoning ALWAYS: not in §4 (retired before May 2026), R1 is a thinking model",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="deepseek-ai/DeepSeek-V3-0324", name="DeepSeek V3-0324", context_window=161_000,
        lifecycle=RETIRED, retired_on=date(2026, 3, 4), price=(1.14, 2.75),
        source=f"{_SEEDS}; {_SEED_PRICE}; contract §7 retired 2026-03-04, no replacement named",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="meta-llama/Llama-3.1-8B-Instruct", name="Llama 3.1 8B", context_window=131_072,
        lifecycle=GA, price=(0.22, 0.22), lora_base=True,
        source=f"{_SEEDS} (128K); {_GA}; {_LORA}",
        as_of=_GA_DATE,
    ),
    dict(
        id="meta-llama/Llama-3.3-70B-Instruct", name="Llama 3.3 70B", context_window=128_000,
        lifecycle=GA, price=(0.71, 0.71),
        source=f"{_SEEDS} (128K); {_GA}",
        as_of=_GA_DATE,
    ),
    dict(
        id="meta-llama/Llama-4-Scout-17B-16E-Instruct", name="Llama 4 Scout",
        context_window=64_000, vision=True, lifecycle=RETIRED, retired_on=date(2026, 4, 21),
        replacement="Qwen/Qwen3.5-35B-A3B", price=(0.17, 0.66),
        source=f"{_SEEDS}; {_SEED_PRICE}; contract §7 retired 2026-04-21 -> Qwen3.5-35B-A3B",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="microsoft/Phi-4-mini-instruct", name="Phi 4 Mini", context_window=128_000,
        lifecycle=RETIRED, retired_on=date(2026, 7, 20), price=(0.08, 0.35),
        source=f"{_SEEDS}; {_SEED_PRICE}; contract §7 deprecated 2026-06-30, retired "
        "2026-07-20, no replacement named",
        as_of=_CONTRACT_DATE,
    ),
    # --- Generally available on 2026-09-29 (contract §7 GA table) ---------------------------
    dict(
        id="openai/gpt-oss-120b", name="gpt-oss-120b", context_window=131_072,
        reasoning=ALWAYS, lifecycle=GA, price=(0.03, 0.17), lora_base=True,
        source=f"{_GA}; {_R4}; {_LORA}", as_of=_GA_DATE,
    ),
    dict(
        id="openai/gpt-oss-20b", name="gpt-oss-20b", context_window=131_072,
        reasoning=ALWAYS, lifecycle=GA, price=(0.03, 0.13),
        source=f"{_GA}; {_R4}", as_of=_GA_DATE,
    ),
    dict(
        id="deepseek-ai/DeepSeek-V4-Flash-0731", name="DeepSeek-V4-Flash-0731",
        context_window=262_144, reasoning=ON, lifecycle=GA, price=(0.13, 0.28, 0.07),
        source=f"{_GA}; {_R4}", as_of=_GA_DATE,
    ),
    dict(
        id="deepseek-ai/DeepSeek-V4-Pro-0813", name="DeepSeek-V4-Pro-0813",
        context_window=1_048_576, reasoning=ON, lifecycle=GA,
        price=(1.31, 3.96, 0.044),
        source=f"{_GA}; {_R4}", as_of=_GA_DATE,
    ),
    dict(
        id="deepseek-ai/DeepSeek-V4.1-Flash", name="DeepSeek-V4.1-Flash",
        context_window=1_048_576, vision=True, lifecycle=GA, price=(0.20, 0.65, 0.03),
        source=f"{_GA}; {_R_UNDOC}", as_of=_GA_DATE,
    ),
    dict(
        id="zai-org/GLM-5.2", name="GLM-5.2", context_window=1_048_576, lifecycle=GA,
        price=(0.76, 2.42, 0.14),
        source=f"{_GA}; {_R_UNDOC}", as_of=_GA_DATE,
    ),
    dict(
        id="google/gemma-4-26B-A4B-it", name="gemma-4-26B-A4B-it", context_window=262_144,
        vision=True, reasoning=OFF, lifecycle=GA, price=(0.10, 0.30, 0.05),
        source=f"{_GA}; {_R4}", as_of=_GA_DATE,
    ),
    dict(
        id="Qwen/Qwen3.8-27B", name="Qwen3.8-27B", context_window=262_144, vision=True,
        lifecycle=GA, price=(0.40, 3.00, 0.15),
        source=f"{_GA}; {_R_UNDOC}", as_of=_GA_DATE,
    ),
    dict(
        id="moonshotai/Kimi-K2.6", name="Kimi-K2.6", context_window=262_144, vision=True,
        reasoning=ALWAYS, lifecycle=GA, price=(0.65, 3.41, 0.15),
        source=f"{_GA}; {_R4}", as_of=_GA_DATE,
    ),
    dict(
        id="ibm-granite/granite-4.2-8b", name="granite-4.2-8b", context_window=131_072,
        reasoning=ON, lifecycle=GA, price=(0.10, 0.15, 0.05),
        source=f"{_GA}; {_R4}", as_of=_GA_DATE,
    ),
    # --- Also listed in 2026, stage by late 2026 uncertain (contract §7) --------------------
    dict(
        id="deepseek-ai/DeepSeek-V3.1", name="DeepSeek-V3.1", context_window=161_000,
        lifecycle=UNKNOWN, price=(0.55, 1.65),
        source=f"{_ALSO}; {_R_UNDOC}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="google/gemma-4-31B-it", name="gemma-4-31B-it", context_window=262_000,
        vision=True, reasoning=OFF, lifecycle=UNKNOWN, price=(0.10, 0.34),
        source=f"{_ALSO}; {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="meta-llama/Llama-3.1-70B-Instruct", name="Llama-3.1-70B-Instruct",
        context_window=128_000, lifecycle=UNKNOWN, price=(0.80, 0.80), lora_base=True,
        source=f"{_ALSO}; {_LORA}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="MiniMaxAI/MiniMax-M2.5", name="MiniMax-M2.5", context_window=197_000,
        reasoning=ALWAYS, lifecycle=UNKNOWN, price=(0.30, 1.20),
        source=f"{_ALSO}; {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="MiniMaxAI/MiniMax-M3", name="MiniMax-M3", context_window=None, vision=True,
        reasoning=ADAPTIVE, lifecycle=UNKNOWN, price=(0.23, 0.96, 0.05),
        source=f"{_ALSO} (no context given); {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="moonshotai/Kimi-K2.5", name="Kimi-K2.5", context_window=262_000, vision=True,
        reasoning=ALWAYS, lifecycle=UNKNOWN, price=None,
        source=f"{_ALSO} (no price given); {_R4}; replacement of Kimi-K2-Instruct(-0905)",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="moonshotai/Kimi-K2.7-Code", name="Kimi-K2.7-Code", context_window=None,
        vision=True, reasoning=ALWAYS, lifecycle=UNKNOWN, price=(0.71, 3.50, 0.15),
        source=f"{_ALSO} (no context given); {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
        name="NVIDIA-Nemotron-3-Super-120B-A12B-FP8", context_window=262_000, reasoning=ON,
        lifecycle=UNKNOWN, price=(0.20, 0.80),
        source=f"{_ALSO}; {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B", name="NVIDIA-Nemotron-3-Ultra-550B-A55B",
        context_window=None, lifecycle=UNKNOWN, price=(0.75, 2.75, 0.15),
        source=f"{_ALSO} (no context given); {_R_UNDOC}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B",
        name="NVIDIA-Nemotron-3.5-Lightning-30B-A3B", context_window=None,
        lifecycle=UNKNOWN, price=(0.10, 0.25, 0.05),
        source=f"{_ALSO} (no context given); {_R_UNDOC}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="OpenPipe/Qwen3-14B-Instruct", name="Qwen3-14B-Instruct", context_window=32_800,
        lifecycle=UNKNOWN, price=(0.05, 0.22), lora_base=True,
        source=f"{_ALSO} (32.8K); {_LORA}; replacement of Qwen2.5-14B-Instruct",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3-235B-A22B-Instruct-2507", name="Qwen3-235B-A22B-Instruct-2507",
        context_window=262_000, lifecycle=UNKNOWN, price=(0.10, 0.10),
        source=f"{_ALSO}; {_R_UNDOC}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3-235B-A22B-Thinking-2507", name="Qwen3-235B-A22B-Thinking-2507",
        context_window=262_000, reasoning=ALWAYS, lifecycle=UNKNOWN, price=(0.10, 0.10),
        source=f"{_ALSO}; {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3-30B-A3B-Instruct-2507", name="Qwen3-30B-A3B-Instruct-2507",
        context_window=262_000, lifecycle=UNKNOWN, price=(0.10, 0.30), lora_base=True,
        source=f"{_ALSO}; {_R_UNDOC}; {_LORA}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3-Coder-480B-A35B-Instruct", name="Qwen3-Coder-480B-A35B-Instruct",
        context_window=262_000, lifecycle=UNKNOWN, price=(1.00, 1.50),
        source=f"{_ALSO}; {_R_UNDOC}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3.5-35B-A3B", name="Qwen3.5-35B-A3B", context_window=262_000,
        vision=True, reasoning=ON, lifecycle=UNKNOWN, price=(0.25, 1.25),
        source=f"{_ALSO}; {_R4}; replacement of Llama-4-Scout", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3.6-35B-A3B", name="Qwen3.6-35B-A3B", context_window=262_000,
        vision=True, reasoning=ON, lifecycle=UNKNOWN, price=(0.25, 1.25),
        source=f"{_ALSO}; {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="Qwen/Qwen3.6-27B", name="Qwen3.6-27B", context_window=262_000, vision=True,
        reasoning=ON, lifecycle=UNKNOWN, price=(0.60, 3.60, 0.12),
        source=f"{_ALSO}; {_R4}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="JetBrains/Mellum2-12B-A2.5B-Instruct", name="Mellum2-12B-A2.5B-Instruct",
        context_window=131_000, lifecycle=UNKNOWN, price=(0.05, 0.10),
        source=f"{_ALSO}; {_R_UNDOC}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="zai-org/GLM-5.1", name="GLM-5.1", context_window=203_000, reasoning=ON,
        lifecycle=UNKNOWN, price=(1.40, 4.40, 0.26),
        source=f"{_ALSO}; {_R4}; replacement of GLM-5-FP8", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="zai-org/GLM-5.3-Flash", name="GLM-5.3-Flash", context_window=None,
        lifecycle=UNKNOWN, price=None,
        source=f"{_ALSO} (ID only: no context, price or capabilities given); {_R_UNDOC}",
        as_of=_CONTRACT_DATE,
    ),
    # --- Retired; only the ID, fate and successor are documented (contract §7) --------------
    dict(
        id="Qwen/Qwen2.5-14B-Instruct", name="Qwen2.5-14B-Instruct", context_window=None,
        lifecycle=RETIRED, replacement="OpenPipe/Qwen3-14B-Instruct",
        source=f"{_CHAIN}: -> OpenPipe/Qwen3-14B-Instruct; {_NO_DATE}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="moonshotai/Kimi-K2-Instruct", name="Kimi-K2-Instruct", context_window=None,
        lifecycle=RETIRED, replacement="moonshotai/Kimi-K2.5",
        source=f"{_CHAIN}: -> Kimi-K2.5; {_NO_DATE}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="moonshotai/Kimi-K2-Instruct-0905", name="Kimi-K2-Instruct-0905",
        context_window=None, lifecycle=RETIRED, replacement="moonshotai/Kimi-K2.5",
        source=f"{_CHAIN}: -> Kimi-K2.5; {_NO_DATE}", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="zai-org/GLM-4.5", name="GLM-4.5", context_window=None, lifecycle=RETIRED,
        replacement="zai-org/GLM-5-FP8",
        source=f"{_CHAIN}: -> GLM-5-FP8 (itself retired -> GLM-5.1); {_NO_DATE}",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="zai-org/GLM-5-FP8", name="GLM-5-FP8", context_window=None, lifecycle=RETIRED,
        retired_on=date(2026, 5, 11), replacement="zai-org/GLM-5.1",
        source=f"{_CHAIN}: retired 2026-05-11 -> GLM-5.1", as_of=_CONTRACT_DATE,
    ),
    dict(
        id="deepseek-ai/DeepSeek-V4-Flash", name="DeepSeek-V4-Flash", context_window=None,
        reasoning=OFF, lifecycle=RETIRED, retired_on=date(2026, 10, 5),
        replacement="deepseek-ai/DeepSeek-V4-Flash-0731",
        source=f"{_CHAIN}: retired 2026-10-05 -> DeepSeek-V4-Flash-0731; {_R4}",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="deepseek-ai/DeepSeek-V4-Pro", name="DeepSeek-V4-Pro", context_window=None,
        reasoning=OFF, lifecycle=RETIRED, retired_on=date(2026, 10, 5),
        replacement="deepseek-ai/DeepSeek-V4-Pro-0813",
        source=f"{_CHAIN}: retired 2026-10-05 -> DeepSeek-V4-Pro-0813; {_R4}",
        as_of=_CONTRACT_DATE,
    ),
    dict(
        id="ibm-granite/granite-4.1-8b", name="granite-4.1-8b", context_window=None,
        lifecycle=RETIRED, retired_on=date(2026, 10, 5),
        source=f"{_CHAIN}: retired 2026-10-05, no replacement named; {_R_UNDOC}",
        as_of=_CONTRACT_DATE,
    ),
)
# fmt: on
"""Every model the sources name, grouped by where it is documented."""

REASONING_HISTORY_IDS: frozenset[str] = frozenset(
    {
        # gpt-oss (harmony format): OpenAI's guide keeps the analysis channel of earlier
        # tool-calling steps in the prompt.
        "openai/gpt-oss-120b",
        "openai/gpt-oss-20b",
        # Kimi K2.x thinking: Moonshot requires reasoning kept across tool calls.
        "moonshotai/Kimi-K2.5",
        "moonshotai/Kimi-K2.6",
        "moonshotai/Kimi-K2.7-Code",
        # MiniMax M2+ (interleaved thinking): vendor requires the full history incl. thinking.
        "MiniMaxAI/MiniMax-M2.5",
        "MiniMaxAI/MiniMax-M3",
        # Qwen3 thinking templates render reasoning_content of turns after the last user message.
        "Qwen/Qwen3-235B-A22B-Thinking-2507",
        "Qwen/Qwen3.5-35B-A3B",
        "Qwen/Qwen3.6-35B-A3B",
        "Qwen/Qwen3.6-27B",
        # GLM templates render reasoning_content of turns after the last user message.
        "zai-org/GLM-5.1",
        # DeepSeek thinking mode with tools (V3.2 onwards) expects reasoning back within a turn.
        "deepseek-ai/DeepSeek-V4-Flash-0731",
        "deepseek-ai/DeepSeek-V4-Pro-0813",
        # Deliberately absent: DeepSeek-R1 (its API rejects reasoning in input), Nemotron and
        # granite (template handling not verified), DEFAULT_OFF models (see models.py).
    }
)
"""Models whose chat template takes earlier turns' reasoning (``send_reasoning_back_default``)."""
