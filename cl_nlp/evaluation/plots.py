"""Figures of one run: per-task retention curves and the run's matrices as heatmaps (PNG).

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so they need no display and leave the backend of an importing notebook alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cl_nlp.evaluation.figures import HeatmapPanels, TaskPanels, save_figure
from cl_nlp.evaluation.results import Results

# (matrix, label, colour, line style) of the retention curves, in drawing order.
CURVES = (("live", "live", "C0", "-"), ("task_aware", "task-aware", "C1", "-"), ("probe", "probe", "C2", "-"),
          ("cka", "CKA vs. right after learning", "0.45", ":"))


def _write(fig: Figure, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=110)


def plot_retention_curves(results: Results, path: str | Path) -> Path:
    """One panel per learned task: live, task-aware and probe accuracy (and CKA drift) across stages,
    from the stage the task was learned on, with the pretrained encoder's probe as a dashed line."""
    s = max(results.stages_done, 1)
    panels = TaskPanels(s, s)
    p0 = results.before.get("probe")
    for j in range(s):
        ax = panels.axis(j, results.task_names[j], "accuracy")
        x = np.arange(j + 1, s + 1)
        for name, label, color, style in CURVES:
            if name in results.matrices:
                ax.plot(x, results.matrices[name][j:s, j], style, marker="o", markersize=3, color=color, label=label)
        if p0 is not None and np.isfinite(p0[j]):
            ax.axhline(p0[j], color="C2", ls="--", lw=1, label="probe, pretrained encoder")
    return panels.finish(path, dpi=110)


def plot_matrices(results: Results, path: str | Path, names: tuple[str, ...] = ("live", "task_aware", "probe", "cka")) -> Path:
    """Heatmaps of the run's matrices in a grid (rows: after task i; columns: task j), values written
    in the cells, the pretrained/untrained measurement as an extra first row where there is one."""
    present = [n for n in names if n in results.matrices]
    t = results.num_tasks
    panels = HeatmapPanels(max(len(present), 1), (t + 1, t))
    short = [n[:8] for n in results.task_names]
    image = None
    for ax, name in zip(panels.used(), present):
        M = results.matrices[name]
        before = results.before.get(name)
        rows = ([("untrained" if name != "probe" else "pretrained", before)] if before is not None else [])
        rows += [(f"after {short[i]}", M[i]) for i in range(results.stages_done)]
        data = np.array([r for _, r in rows], dtype=float).reshape(len(rows), t)
        image = ax.imshow(np.ma.masked_invalid(data), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(name.replace("_", "-"), fontsize=10)
        ax.set_xticks(range(t), short, rotation=90, fontsize=8)
        ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
        ax.set_xlabel("evaluated on task")
        if t <= 12:
            for i in range(len(rows)):
                for j in range(t):
                    if np.isfinite(data[i, j]):
                        ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="black" if data[i, j] > 0.6 else "white")
    return panels.finish(image, path, dpi=110, label="accuracy (CKA: similarity)")


def plot_layer_probes(results: Results, path: str | Path) -> Path | None:
    """Final probe accuracy per hidden state (0 = embeddings), one line per task, with the
    pretrained encoder's as dashed lines; ``None`` when layer-wise probes were not run."""
    layers = sorted(int(n[len("probe_layer"):]) for n in results.matrices if n.startswith("probe_layer"))
    if not layers or results.stages_done == 0:
        return None
    s = results.stages_done
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for j in range(s):
        final = [results.matrices[f"probe_layer{layer}"][s - 1, j] for layer in layers]
        ax.plot(layers, final, marker="o", markersize=3, color=f"C{j % 10}", label=results.task_names[j])
        before = [results.before.get(f"probe_layer{layer}", np.full(results.num_tasks, np.nan))[j] for layer in layers]
        ax.plot(layers, before, "--", color=f"C{j % 10}", lw=1)
    ax.set_xlabel("hidden state (0 = embeddings)")
    ax.set_ylabel("probe accuracy (dashed: pretrained)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    return _write(fig, path)
