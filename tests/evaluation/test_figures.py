"""Figures fit MLflow's artifact preview: grids of at most three panels a row, about 900 px wide."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cl_nlp.comparison.plots import plot_final_matrices, plot_forgetting_curves
from cl_nlp.evaluation.figures import grid_shape
from cl_nlp.evaluation.plots import plot_matrices, plot_retention_curves
from cl_nlp.evaluation.results import Results


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (3, (1, 3)), (4, (2, 2)), (5, (2, 3)), (7, (3, 3)), (15, (5, 3))])
def test_grids_have_at_most_three_columns_and_even_rows(n, shape):
    assert grid_shape(n) == shape


def five_task_run() -> Results:
    rng = np.random.default_rng(0)
    names = [f"clinc{i + 1}" for i in range(5)]
    results = Results(names, "class-incremental", stages_done=5)
    for name in ("live", "task_aware", "probe", "cka"):
        results.matrices[name] = np.where(np.tri(5, dtype=bool), rng.uniform(0.2, 1.0, (5, 5)), np.nan)
    results.before = {name: rng.uniform(0.0, 1.0, 5) for name in ("live", "task_aware", "probe")}
    return results


def test_a_five_task_run_and_a_five_strategy_comparison_fit_the_artifact_pane(tmp_path):
    results = five_task_run()
    groups = {s: [results.matrices["live"]] * 2 for s in ("naive", "ewc", "replay", "lora-merge", "joint")}
    pngs = [plot_retention_curves(results, tmp_path / "curves.png"), plot_matrices(results, tmp_path / "matrices.png"),
            plot_forgetting_curves(groups, results.task_names, tmp_path / "fc.png"),
            plot_final_matrices(groups, results.task_names, tmp_path / "fm.png")]
    for png in pngs:
        width, height = Image.open(png).size
        assert 500 <= width <= 1000 and height <= 900, (png.name, width, height)
