"""Compare two W&B Inference models on a small QA set: accuracy, tokens, latency, cost.

The LangChain-only counterpart of W&B's "Weave Evaluations and Leaderboards" example.
Both models answer the questions below, one at a time (W&B limits requests in flight,
and sequential calls keep latencies comparable); each gets exact-match and contains
accuracy, tokens, latency and estimated cost.  Writes a Markdown table to stdout and
``--markdown``, a PNG bar chart to ``--out``.  Needs the examples extra
(``pip install 'langchain-wandb-inference[examples]'``).  From the repository root::

    python examples/compare_models.py              # emulator: shows the workflow only
    WANDB_API_KEY=... python examples/compare_models.py --models openai/gpt-oss-20b \
        meta-llama/Llama-3.3-70B-Instruct --out chart.png
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path

from _target import Target, connect
from matplotlib.figure import Figure

from langchain_wandb_inference import WBModel, get_wb_inference_callback

# (question, accepted answers); the first answer is the canonical one.
QA: list[tuple[str, tuple[str, ...]]] = [
    ("What is 2 + 2?", ("4", "four")),
    ("What is the capital of France?", ("Paris",)),
    ("What is the chemical symbol for gold?", ("Au",)),
    ("How many days are in a leap year?", ("366",)),
    ("Which planet is known as the Red Planet?", ("Mars",)),
    ("What is the largest ocean on Earth?", ("Pacific", "Pacific Ocean")),
    ("Who wrote Romeo and Juliet?", ("Shakespeare", "William Shakespeare")),
    ("At sea level, water boils at how many degrees Celsius?", ("100",)),
]
SYSTEM = "Answer with only the answer: a number, a word or a name. No sentence, no period."


@dataclass
class Score:
    """One model's results over the QA set."""

    model: str
    exact: int
    contains: int
    input_tokens: int
    output_tokens: int
    seconds: float
    cost_usd: float | None


def normalize(text: str) -> str:
    """Lower-case, without surrounding punctuation or spaces, for exact match."""
    return text.strip().strip(".!\"'`*").strip().lower()


def evaluate(target: Target, model: str) -> Score:
    """Ask every question of ``model``, sequentially, and score the answers."""
    llm = target.chat(model)
    exact = contains = 0
    seconds = 0.0
    with get_wb_inference_callback() as usage:
        for question, answers in QA:
            started = time.perf_counter()
            reply = normalize(llm.invoke([("system", SYSTEM), ("user", question)]).text)
            seconds += time.perf_counter() - started
            refs = [normalize(a) for a in answers]
            exact += reply in refs
            contains += any(re.search(rf"\b{re.escape(r)}\b", reply) for r in refs)
    cost = None if usage.unpriced_models else usage.total_cost
    tokens = (usage.prompt_tokens, usage.completion_tokens)
    return Score(model, exact, contains, *tokens, seconds, cost)


def markdown(scores: list[Score]) -> str:
    """The comparison as a Markdown table."""
    n = len(QA)
    header = ["model", "exact match", "contains", "input tokens", "output tokens"]
    header += ["latency (s)", "est. cost (USD)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in scores:
        cost = "unknown price" if s.cost_usd is None else f"{s.cost_usd:.6f}"
        lines.append(
            f"| {s.model} | {s.exact}/{n} | {s.contains}/{n} | {s.input_tokens} | "
            f"{s.output_tokens} | {s.seconds:.2f} | {cost} |"
        )
    return "\n".join(lines) + "\n"


def chart(scores: list[Score], backend: str, path: Path) -> None:
    """Accuracy, latency and cost bars, titled with the backend so it can't pass for live."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")  # no pyplot: no GUI, no global state
    fig.suptitle(f"{len(QA)} QA questions, answered by {backend}", fontsize=10)
    names = [s.model.split("/")[-1] for s in scores]
    panels: list[tuple[str, list[float], float | None]] = [
        ("contains accuracy (%)", [100 * s.contains / len(QA) for s in scores], 100.0),
        ("total latency (s)", [s.seconds for s in scores], None),
        ("estimated cost (USD)", [s.cost_usd or 0.0 for s in scores], None),
    ]
    for ax, (title, values, top) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        ax.bar(names, values, color=["#4c72b0", "#dd8452"][: len(names)])
        ax.set_ylim(bottom=0, top=top)
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=8)
    fig.savefig(path, format="png")


def main(argv: list[str] | None = None) -> int:
    """Evaluate the models, print and save the table, save the chart."""
    parser = argparse.ArgumentParser(description="Compare W&B Inference models on QA.")
    default = [WBModel.LLAMA_3_1_8B_INSTRUCT.value, WBModel.GPT_OSS_120B.value]
    parser.add_argument("--models", nargs=2, default=default, metavar="MODEL")
    parser.add_argument("--out", type=Path, default=Path("compare_models.png"))
    parser.add_argument("--markdown", type=Path, default=Path("compare_models.md"))
    args = parser.parse_args(argv)

    with connect() as target:
        scores = [evaluate(target, model) for model in args.models]
    table = markdown(scores)
    print(f"\n{len(QA)} questions, asked one at a time.\n\n{table}")
    if not target.live:
        synthetic = "" if target.language_model else " Synthetic answers: accuracy means nothing."
        print("Note: the emulator answers every model ID with the same backend, so this shows")
        print(f"the workflow, not the models.{synthetic}")
    args.markdown.write_text(table, encoding="utf-8")
    chart(scores, target.description, args.out)
    print(f"Wrote {args.markdown} and {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
