"""Per-task and run-level retention numbers against hand-worked values and independent computations."""

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from cl_nlp.evaluation.intervals import (
    mover_mean,
    paired_difference_interval,
    unpaired_difference_interval,
)
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import assess_tasks, retention_matrix
from cl_nlp.evaluation.retention_overall import DRAWS, SEED, assess_run, final_metrics
from cl_nlp.evaluation.verdict import verdict
from tests.evaluation.constructed import constructed_run, nested

LIVE = [[0.90], [0.40, 0.80], [0.20, 0.30, 0.85]]
PROBE = [[0.95], [0.90, 0.92], [0.70, 0.91, 0.93]]
P0 = [0.80, 0.91, 0.60]


def test_per_task_numbers_levels_and_intervals():
    tasks = assess_tasks(constructed_run(LIVE, PROBE, P0, per_class=20))
    t1 = tasks[0]
    assert t1.n == 600 and t1.chance == pytest.approx(1 / 30)
    assert t1.best == pytest.approx(0.95) and t1.margin == pytest.approx(0.1 * (0.95 - 1 / 30))
    lo, hi = proportion_confint(540, 600, method="wilson")  # live right after learning: 0.90 of 600
    e = t1.accuracies["live_after"]
    assert (e.value, e.lo, e.hi, e.level, e.method) == pytest.approx((0.9, lo, hi, 0.95, "wilson"))
    # Bonferroni: questions about earlier tasks over 2 tasks, the gain and "learned" over all 3
    assert t1.levels["live_change"] == pytest.approx(0.975) and t1.levels["gain"] == pytest.approx(1 - 0.05 / 3)
    d = t1.differences["live_change"]
    assert (d.value, d.lo, d.hi) == pytest.approx(paired_difference_interval(nested(0.2, 600), nested(0.9, 600), 0.975))
    assert d.method == "paired" and t1.outcomes["live_change"] == "lower" and t1.category == "both"
    assert t1.differences["final_vs_pretrained"].value == pytest.approx(-0.10)
    last = tasks[2]
    assert last.category is None and "live_change" not in last.differences and "gain" in last.differences


def test_run_averages_combine_the_tasks_own_intervals_and_the_share_is_bootstrapped():
    results = constructed_run(LIVE, PROBE, P0, per_class=20)
    run = assess_run(results)
    per_task = [paired_difference_interval(nested(LIVE[2][j], 600), nested(LIVE[j][j], 600)) for j in (0, 1)]
    expected = mover_mean(*zip(*per_task))
    e = run.aggregates["live_change"]
    assert (e.value, e.lo, e.hi, e.method) == pytest.approx((*expected, "mover"))
    # Representation share Σ(P_jj − P_3j) / Σ(R_jj − R_3j): brute-force bootstrap with the same draws.
    draws = []
    rngs = [np.random.default_rng([SEED, j]) for j in (0, 1)]
    idx = [rng.integers(0, 600, size=(DRAWS, 600)) for rng in rngs]
    vec = {(j, k): nested(v, 600) for j in (0, 1) for k, v in
           (("pa", PROBE[j][j]), ("pf", PROBE[2][j]), ("la", LIVE[j][j]), ("lf", LIVE[2][j]))}
    for b in range(DRAWS):
        m = {(j, k): vec[(j, k)][idx[j][b]].mean() for (j, k) in vec}
        draws.append(sum(m[(j, "pa")] - m[(j, "pf")] for j in (0, 1)) / sum(m[(j, "la")] - m[(j, "lf")] for j in (0, 1)))
    share = run.aggregates["representation_share"]
    assert share.value == pytest.approx((0.25 + 0.01) / (0.70 + 0.50))
    assert (share.lo, share.hi) == pytest.approx(tuple(np.quantile(draws, [0.025, 0.975])), abs=1e-6)
    assert run.aggregates["recoverable_share"].value == pytest.approx(1 - share.value)
    again = assess_run(results)  # seeded: the same folder always gives the same intervals
    assert again.aggregates["representation_share"] == share


def test_older_results_without_vectors_use_unpaired_intervals_and_say_so():
    results = constructed_run(LIVE, PROBE, P0, per_class=20)
    results.correct, results.task_classes, results.test_class_counts = {}, [], []
    results.extra["classification_reports"] = {"1": {f"t{j + 1}": {"classes": list(range(30)), "support": [20] * 30}
                                                     for j in range(3)}}
    run = assess_run(results)
    d = run.tasks[0].differences["live_change"]
    assert d.method == "unpaired"
    assert (d.value, d.lo, d.hi) == pytest.approx(unpaired_difference_interval(0.2, 0.9, 600, 0.975))
    assert run.category == "both" and not run.aggregates["representation_share"].has_interval
    assert any("no per-example correctness" in note for note in run.notes)
    assert "Cannot tell from this run: this run saved no per-example correctness" in verdict(results)


def test_matrices_alone_give_no_intervals_and_no_outcomes():
    results = Results(["a", "b"], "class-incremental")
    results.matrices["live"] = np.array([[0.9, np.nan], [0.2, 0.9]])
    results.stages_done = 2
    run = assess_run(results)
    assert run.category == "cannot_tell" and run.tasks[0].category == "cannot_tell"
    assert any("no test-set sizes" in note for note in run.notes)
    text = verdict(results)
    assert "fell" not in text and "no test-set sizes" in text


def test_final_metrics_carry_interval_bounds():
    results = constructed_run(LIVE, PROBE, P0, per_class=20)
    results.timings.update({"run_seconds": 100.0, "probe_seconds/pretrained": 4.0, "probe_seconds/t1": 6.0})
    final = final_metrics(results)
    for key in ("live_change", "probe_change", "readout_loss", "representation_gain", "recoverable_share"):
        assert final[f"final/{key}_lo"] <= final[f"final/{key}"] <= final[f"final/{key}_hi"]
    assert final["final/probe_acc"] == pytest.approx((0.70 + 0.91 + 0.93) / 3)
    assert final["final/probe_bwt"] == pytest.approx(((0.70 - 0.95) + (0.91 - 0.92)) / 2)
    assert final["final/pretrained_probe_acc"] == pytest.approx(np.mean(P0))
    assert final["final/probe_time_share"] == pytest.approx(0.10) and final["final/tasks_learned"] == 3
    assert math.isnan(final["final/cka_debiased"])  # no drift recorded in this hand-made run


def test_retention_matrix():
    R = retention_matrix(np.array([[0.9, np.nan], [0.2, 0.8]]))
    assert R[1, 0] == pytest.approx(0.2 / 0.9) and np.isnan(R[0, 1]) and np.allclose(np.diag(R), 1.0)
