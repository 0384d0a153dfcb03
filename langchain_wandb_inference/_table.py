"""Plain-text tables for the command line (``wb-inference models``, the probe's report)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as left-aligned columns two spaces apart, trailing spaces trimmed."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def prices(values: Iterable[float | None]) -> str:
    """Per-1M-token prices as ``in/out/cached``, ``-`` where none is published."""
    return "/".join("-" if v is None else f"{v:g}" for v in values)
