"""Plain-text and CSV views of the results: what a run prints and writes next to its JSON."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from cl_nlp.evaluation.results import Results


def _cell(v: float) -> str:
    return "   -  " if math.isnan(v) else f"{v:6.3f}"


def format_matrix(results: Results, name: str = "live") -> str:
    """The accuracy matrix as an aligned table: rows = after task i, columns = task j."""
    names = results.task_names
    width = max(len("untrained"), *(len("after " + n) for n in names))
    R = results.matrix(name)
    lines = [" " * (width + 2) + " ".join(f"{n[:6]:>6}" for n in names)]
    before = results.before.get(name)
    if before is not None:
        lines.append(f"{'untrained':>{width}}  " + " ".join(_cell(v) for v in before))
    for i in range(results.stages_done):
        lines.append(f"{'after ' + names[i]:>{width}}  " + " ".join(_cell(v) for v in R[i]))
    return "\n".join(lines)


def format_summary(results: Results) -> str:
    """One line per matrix: ACC, BWT, forgetting, FWT."""
    lines = []
    for name in results.accuracy_matrices():
        s = results.summary(name)
        lines.append(f"{name:>11}: ACC {s['acc']:.3f}  BWT {s['bwt']:+.3f}  forgetting {s['forgetting']:.3f}"
                     + (f"  FWT {s['fwt']:+.3f}" if "fwt" in s and not math.isnan(s["fwt"]) else ""))
    return "\n".join(lines).replace("nan", "n/a")


def write_matrix_csv(results: Results, name: str, path: str | Path) -> None:
    """CSV with a header of task names; first column says after which task the row was measured."""
    R = results.matrix(name)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["after", *results.task_names])
        if name in results.before:
            w.writerow(["untrained", *[("" if np.isnan(v) else f"{v:.6f}") for v in results.before[name]]])
        for i in range(results.stages_done):
            w.writerow([results.task_names[i], *[("" if np.isnan(v) else f"{v:.6f}") for v in R[i]]])
