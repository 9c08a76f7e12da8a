"""The grid of per-task panels both figure modules draw on: one panel per task, x = stage.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly, never
through pyplot, so plotting needs no display and leaves a notebook's backend alone.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Render ``fig`` with the Agg canvas to ``path`` (PNG)."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return Path(path)


class TaskPanels:
    """``n`` panels in rows of at most five, sharing the y axis; panel ``j`` shows task ``j``
    across stages ``j+1 .. stages``."""

    def __init__(self, n: int, stages: int):
        self.n = n
        self.stages = stages
        self.cols = min(n, 5)
        self.rows = math.ceil(n / self.cols)
        self.fig = Figure(figsize=(3.2 * self.cols, 2.6 * self.rows + 0.6), layout="constrained")
        self.axes = self.fig.subplots(self.rows, self.cols, squeeze=False, sharey=True)

    def axis(self, j: int, title: str, ylabel: str):
        """Panel ``j``, styled: stage ticks, accuracy range, labels on the outer edge only."""
        ax = self.axes[j // self.cols][j % self.cols]
        ax.set(xlim=(0.7, self.stages + 0.3), xticks=range(1, self.stages + 1), ylim=(-0.02, 1.02),
               ylabel=ylabel if j % self.cols == 0 else "",
               xlabel="stage (tasks learned)" if j // self.cols == self.rows - 1 else "")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        return ax

    def finish(self, path: str | Path, dpi: int, legend_cols: int) -> Path:
        """Hide unused panels, put one legend above the grid, and save."""
        for j in range(self.n, self.rows * self.cols):
            self.axes[j // self.cols][j % self.cols].set_visible(False)
        handles, labels = self.axes[0][0].get_legend_handles_labels()
        self.fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), legend_cols), frameon=False)
        return save_figure(self.fig, path, dpi)
