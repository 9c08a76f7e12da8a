"""Figures comparing strategies over seeds: forgetting curves and final accuracy matrices.

Each strategy contributes the accuracy matrices of its runs (one per seed, all of one stream);
:func:`seed_mean_std` reduces them cell by cell, and both figures draw from that. Figures are
built on :class:`matplotlib.figure.Figure` with the Agg canvas directly, never through pyplot,
so plotting neither needs a display nor changes the backend of a notebook that imports us.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cl_nlp.evaluation.figures import HeatmapPanels, TaskPanels


def seed_mean_std(matrices: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell-wise mean, sample std (ddof=1) and count of the finite values across runs.

    A cell measured in fewer than two runs has std NaN; a cell measured in none has mean NaN.
    """
    stack = np.stack([np.asarray(m, dtype=float) for m in matrices])
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    total = np.where(finite, stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        sq = np.where(finite, (stack - mean) ** 2, 0.0).sum(axis=0)
        std = np.where(count > 1, np.sqrt(sq / (count - 1)), np.nan)
    return mean, std, count


def plot_forgetting_curves(groups: dict[str, list[np.ndarray]], task_names: list[str], path: str | Path,
                           ylabel: str = "accuracy") -> Path:
    """One panel per task, one line per strategy: accuracy on the task after each stage.

    x = stage (tasks learned so far), from the stage the task is learned to the last one; the
    line is the mean over seeds and the band ± one sample standard deviation.
    """
    n = len(task_names)
    panels = TaskPanels(n, n)
    stats = {label: seed_mean_std(ms) for label, ms in groups.items()}
    for j, task in enumerate(task_names):
        ax = panels.axis(j, task, ylabel)
        x = np.arange(j + 1, n + 1)
        for k, (label, (mean, std, _)) in enumerate(stats.items()):
            y, s = mean[j:, j], std[j:, j]
            line, = ax.plot(x, y, marker="o", markersize=3, label=label, color=f"C{k}")
            band = np.isfinite(s)
            if band.any():
                ax.fill_between(x[band], (y - s)[band], (y + s)[band], color=line.get_color(), alpha=0.2, lw=0)
    return panels.finish(path, dpi=110)


def plot_final_matrices(groups: dict[str, list[np.ndarray]], task_names: list[str], path: str | Path,
                        label: str = "accuracy") -> Path:
    """Heatmaps of each strategy's accuracy matrix, averaged over seeds, at most three a row.

    Rows: after training on task i; columns: task j; cells never measured are left blank.
    """
    n = len(task_names)
    panels = HeatmapPanels(max(len(groups), 1), (n, n))
    axes = panels.used()
    image = None
    short = [t[:8] for t in task_names]
    for k, (ax, (name, matrices)) in enumerate(zip(axes, groups.items())):
        mean, _, count = seed_mean_std(matrices)
        image = ax.imshow(np.ma.masked_invalid(mean), vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_title(f"{name} (n={int(count.max()) if count.size else 0})", fontsize=10)
        ax.set_xticks(range(n), short, rotation=90, fontsize=8)
        ax.set_yticks(range(n), short, fontsize=8)
        ax.set_xlabel("evaluated on task")
        if k % panels.cols == 0:
            ax.set_ylabel("after training on task")
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if np.isfinite(mean[i, j]):
                        ax.text(j, i, f"{mean[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="black" if mean[i, j] > 0.6 else "white")
    return panels.finish(image, path, dpi=110, label=label)
