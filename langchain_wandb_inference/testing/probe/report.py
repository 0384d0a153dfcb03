"""The probe's output: the terminal table, ``report.md``, ``report.json``, and the secret scan.

Nothing is uploaded anywhere: the files are written to a folder the user then decides
whether to share.  Before a byte is written, every file (reports and cassettes) is
scanned with the scrubber's :meth:`~langchain_wandb_inference._redact.Scrubber.find`;
if anything secret-shaped remains, :func:`write` raises :class:`SecretLeakError` and
writes nothing.  The scan is a second line of defence: everything was scrubbed when it
was recorded (``run``), so a finding means the probe has a bug.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_wandb_inference._table import table
from langchain_wandb_inference._version import __version__
from langchain_wandb_inference.errors import ExitCode
from langchain_wandb_inference.testing.probe.assumptions import BUDGET, DIFFERS, OK
from langchain_wandb_inference.testing.probe.run import ProbeRun, Result

FORMAT = 1
"""Version of ``report.json``'s layout (``learn`` reads it)."""
LEARN = "python -m langchain_wandb_inference.testing.learn report.json"
CAP = (
    "estimated from catalog prices, enforced by the package's Budget guard: the probe "
    "stops before a request that would not fit"
)
SHARE = "Nothing was uploaded: you choose whether to share them."


class SecretLeakError(Exception):
    """Secret-shaped text survived scrubbing; nothing was written (a bug in the probe)."""

    exit_code = ExitCode.UNEXPECTED


def _when(run: ProbeRun) -> str:
    end = run.finished.isoformat(timespec="seconds") if run.finished else "?"
    return f"{run.started.isoformat(timespec='seconds')} to {end}"


def _target(run: ProbeRun) -> str:
    return (
        "the bundled emulator (synthetic answers)" if run.on_emulator else "the service at that URL"
    )


def as_json(run: ProbeRun) -> dict[str, Any]:
    """``report.json``: everything ``learn`` needs, with each result's evidence."""
    return {
        "format": FORMAT,
        "tool": "wb-inference probe",
        "package_version": __version__,
        "base_url": run.base_url,
        "target": "emulator" if run.on_emulator else "service",
        "started_utc": run.started.isoformat(timespec="seconds"),
        "finished_utc": run.finished.isoformat(timespec="seconds") if run.finished else None,
        "models": list(run.models),
        "budget": {"limit_usd": run.budget_usd, "spent_usd_estimate": round(run.spent_usd, 6)},
        "requests_sent": run.requests,
        "counts": dict(Counter(r.verdict for r in run.results)),
        "results": [
            {
                "assumption": r.assumption.name,
                "model": r.model,
                "verdict": r.verdict,
                "expected": list(r.assumption.expected),
                "observed": r.observed,
                "note": r.note,
                "source": r.assumption.source,
                "how_to_observe": r.assumption.how_to_observe,
                "evidence": r.evidence,
                "cassette": r.cassette,
            }
            for r in run.results
        ],
        "skipped_for_budget": [_label(r) for r in run.results if r.verdict == BUDGET],
    }


def _label(result: Result) -> str:
    return result.assumption.name + (f" [{result.model}]" if result.model else "")


def _cells(result: Result, limit: int | None) -> list[str]:
    expected = result.assumption.expected
    shown = expected[0] + (f" (or {len(expected) - 1} more)" if len(expected) > 1 else "")
    observed = result.observed if result.observed is not None else f"- {result.note}"
    model = result.model.rsplit("/", 1)[-1] if result.model else "-"
    cells = [result.assumption.name, model, shown, observed, result.verdict]
    if limit is None:
        return cells
    return [c if len(c) <= limit else c[: limit - 1] + "…" for c in cells]


_HEADER = ["ASSUMPTION", "MODEL", "EXPECTED (CONTRACT)", "OBSERVED", "RESULT"]


def terminal_table(run: ProbeRun) -> str:
    """The table printed when the probe ends: assumption -> expected -> observed -> result."""
    return table([_HEADER, *(_cells(r, 44) for r in run.results)])


def summary(run: ProbeRun) -> str:
    """One line: counts per verdict, requests sent, estimated spend against the cap."""
    counts = ", ".join(f"{n} {v}" for v, n in Counter(r.verdict for r in run.results).items())
    return (
        f"{counts}; {run.requests} requests, about ${run.spent_usd:.4f} of the "
        f"${run.budget_usd:.2f} cap (estimated from catalog prices)"
    )


def _md(text: str) -> str:
    """A Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def as_markdown(run: ProbeRun) -> str:
    """``report.md``: the same results for people, differences first with their evidence."""
    lines = [
        "# W&B Inference conformance probe",
        "",
        f"- package: langchain-wandb-inference {__version__}",
        f"- base URL: {run.base_url} ({_target(run)})",
        f"- models: {', '.join(run.models)}",
        f"- run (UTC): {_when(run)}",
        f"- result: {summary(run)}",
        "",
        "Nothing was uploaded. The key and the team/project were replaced by `[REDACTED]`;",
        "user agent, cookies and SDK fingerprint headers were dropped; other response headers",
        "keep their name and the shape of their value only. You decide whether to share this",
        f"folder. Maintainers turn it into changes with `{LEARN}`.",
        "",
        "| assumption | model | expected (contract) | observed | result |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(map(_md, _cells(r, None))) + " |" for r in run.results]
    differing = [r for r in run.results if r.verdict not in (OK, BUDGET)]
    if differing:
        lines += ["", "## Details (everything not ok)"]
    for r in differing:
        lines += [
            "",
            f"### {_label(r)}: {r.verdict}",
            "",
            f"- how: {r.assumption.how_to_observe}",
            f"- contract, {r.assumption.source}: {' | '.join(r.assumption.expected)}",
            f"- observed: {r.observed if r.observed is not None else r.note}",
        ]
        if r.cassette:
            lines.append(f"- exchange: `{r.cassette}`")
        if r.evidence and r.verdict == DIFFERS:
            evidence = json.dumps(r.evidence, indent=2, ensure_ascii=False)
            lines += ["", "```json", evidence, "```"]
    skipped = [_label(r) for r in run.results if r.verdict == BUDGET]
    if skipped:
        lines += ["", "## Skipped for budget (nothing was sent for them)", ""]
        lines += [f"- {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def files(run: ProbeRun) -> dict[str, str]:
    """Every output file, by path relative to the output folder."""
    report = json.dumps(as_json(run), indent=2, ensure_ascii=False) + "\n"
    return {"report.md": as_markdown(run), "report.json": report, **run.cassettes}


def write(run: ProbeRun, out: Path) -> list[Path]:
    """Scan every file, then write them under ``out``; raise and write nothing on a find."""
    contents = files(run)
    leaks = {
        name: len(found) for name, text in contents.items() if (found := run.scrubber.find(text))
    }
    if leaks:
        where = ", ".join(f"{name} ({count})" for name, count in sorted(leaks.items()))
        raise SecretLeakError(
            f"secret-shaped text survived scrubbing in {where}; nothing was written. "
            "This is a bug in the probe: please report it (without the files)."
        )
    written: list[Path] = []
    try:
        for name, text in contents.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written
