"""``python -m langchain_wandb_inference.testing.learn REPORT.json``: a probe report to a change.

Why: a user with a W&B key runs ``wb-inference probe`` and shares its folder; a
maintainer, who cannot reach W&B, needs to know what to change.  For each assumption
the report says *differs*, this prints what the contract expects, what the service
sent, what the emulator and the catalog do today (the probe is re-run against a fresh
emulator for the report's models to show it), where the emulator produces it, what in
the package relies on it, and the recorded exchange to build a test from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_wandb_inference._table import prices
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.models import Lifecycle, all_models, model_info
from langchain_wandb_inference.testing.probe.assumptions import BY_NAME, DIFFERS
from langchain_wandb_inference.testing.probe.report import FORMAT
from langchain_wandb_inference.testing.probe.run import Result, on_emulator

ADOPT = """\
To adopt an observation: change the assumption's `expected` in
langchain_wandb_inference/testing/probe.py (and the contract section it cites), make the
emulator produce it (the file above), and run
    .venv/bin/python -m pytest tests/emulator_tests/test_probe.py
which holds every assumption ok on the emulator. For the package code that relies on
it, replay the recorded exchange (the cassette above) in a test."""


def catalog_today(name: str, model: str | None) -> str:
    """What the catalog says about the model (or, for the listing, about itself)."""
    if model is None and name.startswith("models."):
        served = [i for i in all_models() if i.lifecycle is not Lifecycle.RETIRED]
        return f"{len(all_models())} models, {len(served)} not retired"
    if model is None:
        return "-"
    info = model_info(model)
    if info is None:
        return f"{model}: not in the catalog"
    cost = prices(dataclasses.astuple(info.price)) if info.price else "?"
    yes = {True: "yes", False: "no"}
    return (
        f"{model}: reasoning {info.reasoning.value}, tools {yes[info.tool_calling]}, "
        f"json_schema {yes[info.structured_output]}, context {info.context_window or '?'}, "
        f"$/1M in/out/cached {cost}, {info.lifecycle.value}"
    )


def explain(row: Mapping[str, Any], today: Mapping[tuple[str, str | None], Result]) -> list[str]:
    """The lines for one differing result of a report."""
    label = row["assumption"] + (f" [{row['model']}]" if row.get("model") else "")
    assumption = BY_NAME.get(row["assumption"])
    if assumption is None:
        return [label, "  not an assumption of this version of the package: update it first"]
    emulated = today.get((assumption.name, row.get("model")))
    emulator = (
        f"{emulated.observed or emulated.note} ({emulated.verdict})" if emulated else "not run"
    )
    lines = [
        label,
        f"  contract, {assumption.source}: {' | '.join(assumption.expected)}",
        f"  observed:            {row.get('observed')}",
        f"  emulator today:      {emulator}",
        f"  catalog today:       {catalog_today(assumption.name, row.get('model'))}",
        f"  change the emulator: {assumption.emulator}",
        f"  code relying on it:  {assumption.package}",
    ]
    if row.get("cassette"):
        lines.append(f"  exchange:            {row['cassette']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print what to change for each difference; 2 when the report cannot be read."""
    parser = argparse.ArgumentParser(
        prog="python -m langchain_wandb_inference.testing.learn", description=__doc__
    )
    parser.add_argument("report", type=Path, help="report.json written by wb-inference probe")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        rows, models = list(report["results"]), list(report["models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot read {args.report} as a probe report: {exc}", file=sys.stderr)
        return 2
    if report.get("format") != FORMAT:
        print(
            f"error: report format {report.get('format')!r}, this tool reads {FORMAT}",
            file=sys.stderr,
        )
        return 2
    print(
        f"Report: {report.get('base_url')} ({report.get('target')}), {report.get('started_utc')}, "
        f"package {report.get('package_version')} (this checkout: {__version__})"
    )
    differing = [r for r in rows if r.get("verdict") == DIFFERS]
    if not differing:
        print("Nothing differs from the contract: no change needed.")
        return 0
    today = {(r.assumption.name, r.model): r for r in on_emulator(models).results}
    for row in differing:
        print()
        print("\n".join(explain(row, today)))
    print()
    print(ADOPT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
