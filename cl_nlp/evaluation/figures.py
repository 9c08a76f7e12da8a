"""The grids both figure modules draw on: per-task panels (x = stage) and panels of heatmaps.

Figures are sized for MLflow's artifact preview, the place most people look at them: at most
three panels a row and about 900 px wide at the saved resolution, so a five-task run reads as
two rows instead of one 1,800-px strip squeezed beside the UI's side panels.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly, never
through pyplot, so plotting needs no display and leaves a notebook's backend alone.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_COLUMNS = 3
PANEL_WIDTH = 2.7   # inches; 3 x 2.7 in x 110 dpi ~ 900 px
PANEL_HEIGHT = 2.2


def save_figure(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Render ``fig`` with the Agg canvas to ``path`` (PNG)."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return Path(path)


def grid_shape(n: int, max_cols: int = MAX_COLUMNS) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels: at most ``max_cols`` a row, rows as even as possible
    (4 panels make 2 x 2, not 3 + 1)."""
    n = max(n, 1)
    rows = math.ceil(n / max_cols)
    return rows, math.ceil(n / rows)


class TaskPanels:
    """``n`` panels in rows of at most three, sharing the y axis; panel ``j`` shows task ``j``
    across stages ``j+1 .. stages``."""

    def __init__(self, n: int, stages: int):
        self.n = n
        self.stages = stages
        self.rows, self.cols = grid_shape(n)
        self.fig = Figure(figsize=(PANEL_WIDTH * self.cols, PANEL_HEIGHT * self.rows + 0.8), layout="constrained")
        self.axes = self.fig.subplots(self.rows, self.cols, squeeze=False, sharey=True)

    def axis(self, j: int, title: str, ylabel: str):
        """Panel ``j``, styled: stage ticks, accuracy range, labels on the outer edge only."""
        ax = self.axes[j // self.cols][j % self.cols]
        ax.set(xlim=(0.7, self.stages + 0.3), xticks=range(1, self.stages + 1), ylim=(-0.02, 1.02),
               ylabel=ylabel if j % self.cols == 0 else "",
               xlabel="stage (tasks learned)" if j + self.cols >= self.n else "")
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        return ax

    def finish(self, path: str | Path, dpi: int, legend_cols: int = MAX_COLUMNS) -> Path:
        """Hide unused panels, put one legend above the grid, and save."""
        for j in range(self.n, self.rows * self.cols):
            self.axes[j // self.cols][j % self.cols].set_visible(False)
        handles, labels = self.axes[0][0].get_legend_handles_labels()
        self.fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), legend_cols) or 1,
                        frameon=False, fontsize=8)
        return save_figure(self.fig, path, dpi)


class HeatmapPanels:
    """``n`` heatmaps of ``rows x cols`` cells in a grid of at most three a row, one colour bar."""

    def __init__(self, n: int, cells: tuple[int, int]):
        self.n = n
        self.rows, self.cols = grid_shape(n)
        cell = min(0.3, 3.0 / max(cells))  # inches per cell: a 5-task matrix stays ~300 px wide
        width = cell * cells[1] + 1.1      # cells plus the row labels on the left
        height = cell * cells[0] + 1.2     # cells plus the rotated task names below
        self.fig = Figure(figsize=(width * self.cols + 0.8, height * self.rows), layout="constrained")
        self.axes = [ax for row in self.fig.subplots(self.rows, self.cols, squeeze=False) for ax in row]

    def used(self):
        """The axes that hold a heatmap, in order (the rest are hidden)."""
        for ax in self.axes[self.n:]:
            ax.set_visible(False)
        return self.axes[: self.n]

    def finish(self, image, path: str | Path, dpi: int, label: str) -> Path:
        if image is not None:
            self.fig.colorbar(image, ax=self.axes[: self.n], shrink=0.8, label=label)
        return save_figure(self.fig, path, dpi)
