"""Trace W&B Inference calls with Weave, as W&B's own first example does.

W&B's docs decorate a function with ``@weave.op()`` and call ``weave.init("team/project")``:
every call of the function is then logged to W&B (inputs, output, latency, model),
and ``weave.init`` also patches LangChain, so the ``ChatWBInference`` call inside
shows up as a child of the op.  Weave prints a link to each trace.

Weave sends traces to W&B's servers; the ``weave`` package has no local trace store.
So without ``WANDB_API_KEY`` this example does not call ``weave.init``: it says that
tracing is skipped and runs the same ``@weave.op`` function untraced (an op works
as a plain function until ``weave.init``), against the local emulator.  Nothing in
the output pretends a trace was recorded.  (Once initialised, Weave also reports its
own errors to Sentry; ``WANDB_ERROR_REPORTING=false`` opts out.)

Needs the examples extra (``pip install 'langchain-wandb-inference[examples]'``).
Run it (from the repository root)::

    python examples/tracing_weave.py               # emulator, tracing skipped
    export WANDB_API_KEY=...  WANDB_ENTITY=my-team  WANDB_PROJECT=my-project
    python examples/tracing_weave.py               # live, traced to my-team/my-project
"""

from __future__ import annotations

import argparse

import weave
from _target import connect

from langchain_wandb_inference import WBModel


def main(argv: list[str] | None = None) -> int:
    """Run one traced chat call (traced only when Weave can reach W&B)."""
    parser = argparse.ArgumentParser(description="Trace W&B Inference calls with Weave.")
    parser.add_argument("--model", default=WBModel.LLAMA_3_1_8B_INSTRUCT.value)
    parser.add_argument("--question", default="Tell me a joke.")
    args = parser.parse_args(argv)

    with connect() as target:
        llm = target.chat(args.model)

        @weave.op(name="run_chat")
        def run_chat(question: str) -> str:
            """One chat call; Weave logs its input, output and latency when initialised."""
            messages = [("system", "You are a helpful assistant."), ("user", question)]
            return llm.invoke(messages).text

        if not target.live:
            print(
                "Weave tracing skipped: Weave logs traces to W&B's servers, which need "
                "WANDB_API_KEY and a network connection.\nRunning the @weave.op function "
                "untraced.\n"
            )
            print(run_chat(args.question))
            return 0

        # As W&B's docs do; without a team/project, W&B's default project `inference`.
        client = weave.init(target.project or "inference")
        try:
            print(run_chat(args.question))
        finally:
            client.flush()  # upload before returning, not only at interpreter exit
            weave.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
