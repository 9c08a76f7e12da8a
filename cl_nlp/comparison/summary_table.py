"""The comparison table: per strategy, mean ± std over seeds of each run's final metrics.

Input is plain data — for each strategy, the ``final/*`` metrics of its finished runs (as
MLflow stores them) — so the sweep and ``cl-nlp compare`` build the same table. The spread is
the *sample* standard deviation over seeds (``ddof=1``, what a paper's "± std" over a few
seeds means); with a single seed there is no spread and only the mean is shown. A metric some
run lacks (e.g. probe metrics of a run made without probes) is averaged over the runs that
have it, and the cell says over how many (``n=1``); a metric no run has reads ``n/a``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

# (metric key as logged, column header, short name used in CSV columns and summary metrics)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("final/acc", "ACC", "acc"),
    ("final/bwt", "BWT", "bwt"),
    ("final/forgetting", "forgetting", "forgetting"),
    ("final/acc_task_aware", "task-aware ACC", "acc_task_aware"),
    ("final/probe_acc", "probe ACC", "probe_acc"),
    ("final/recoverable_share", "recoverable share", "recoverable_share"),
    ("final/train_seconds", "train time (s)", "train_seconds"),
)
# Derived by the comparison rather than logged by each run; a column only where some run has it.
OPTIONAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("final/intransigence", "intransigence", "intransigence"),
)


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of ``n`` values (``std`` is NaN when ``n < 2``)."""

    mean: float
    std: float
    n: int


def mean_std(values: list[float]) -> Stat:
    """Mean and sample std (ddof=1) of the finite ``values``; NaN mean when none is finite."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return Stat(float("nan"), float("nan"), 0)
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return Stat(mean, std, len(xs))


@dataclass
class SummaryRow:
    """One strategy's line of the table."""

    strategy: str
    runs: int
    failed: int
    stats: dict[str, Stat]  # short name -> Stat


def summarize(finals: dict[str, list[dict[str, float]]], failed: dict[str, int] | None = None) -> list[SummaryRow]:
    """One row per strategy (in the given order) from the final metrics of its finished runs."""
    failed = failed or {}
    columns = COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if any(c[0] in m for runs in finals.values() for m in runs))
    rows = []
    for strategy in dict.fromkeys([*finals, *failed]):
        runs = finals.get(strategy, [])
        stats = {short: mean_std([m.get(key, float("nan")) for m in runs]) for key, _, short in columns}
        rows.append(SummaryRow(strategy, len(runs), failed.get(strategy, 0), stats))
    return rows


def columns_of(rows: list[SummaryRow]) -> tuple[tuple[str, str, str], ...]:
    """The columns the rows hold: every fixed one, and the optional ones :func:`summarize` found."""
    present = rows[0].stats if rows else {}
    return COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c[2] in present)


def _spec(short: str) -> str:
    return {"train_seconds": ".0f", "bwt": "+.3f"}.get(short, ".3f")


def format_cell(stat: Stat, runs: int, spec: str = ".3f") -> str:
    """``0.812 ± 0.010``; ``0.812`` for one value; ``(n=k)`` when only k of the runs had it."""
    if stat.n == 0:
        return "n/a"
    text = f"{stat.mean:{spec}}"
    if stat.n > 1:
        text += f" ± {stat.std:{spec.lstrip('+')}}"
    if stat.n < runs:
        text += f" (n={stat.n})"
    return text


def format_markdown(rows: list[SummaryRow]) -> str:
    """The table as GitHub markdown (also readable printed in a terminal)."""
    columns = columns_of(rows)
    headers = ["strategy", "seeds", *[header for _, header, _ in columns]]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        seeds = str(row.runs) + (f" ({row.failed} failed)" if row.failed else "")
        cells = [format_cell(row.stats[short], row.runs, _spec(short)) for _, _, short in columns]
        lines.append("| " + " | ".join([row.strategy, seeds, *cells]) + " |")
    return "\n".join(lines)


def write_csv(rows: list[SummaryRow], path: str | Path) -> None:
    """Full-precision CSV: ``<metric>_mean``, ``<metric>_std``, ``<metric>_n`` per column."""
    columns = columns_of(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["strategy", "runs", "failed", *[f"{short}_{part}" for _, _, short in columns
                                                   for part in ("mean", "std", "n")]])
        for row in rows:
            cells: list[object] = []
            for _, _, short in columns:
                s = row.stats[short]
                cells += ["" if math.isnan(s.mean) else repr(s.mean), "" if math.isnan(s.std) else repr(s.std), s.n]
            w.writerow([row.strategy, row.runs, row.failed, *cells])


def summary_metrics(rows: list[SummaryRow]) -> dict[str, float]:
    """``summary/<strategy>/<metric>_mean`` and ``_std`` for logging (NaN cells are left out)."""
    out = {}
    for row in rows:
        for _, _, short in columns_of(rows):
            s = row.stats[short]
            out[f"summary/{row.strategy}/{short}_mean"] = s.mean
            out[f"summary/{row.strategy}/{short}_std"] = s.std
    return {k: v for k, v in out.items() if not math.isnan(v)}
