"""The comparison's numbers and checks, against hand-worked values (no server; see test_sweep.py)."""

import math
import statistics

import numpy as np
import pytest
from scipy import stats

from cl_nlp.comparison.runs import rebuild_results
from cl_nlp.comparison.comparison import ComparedRun, group_runs, select_runs, write_comparison
from cl_nlp.errors import UserError
from cl_nlp.comparison.plots import seed_mean_std
from cl_nlp.comparison.summary_table import format_cell, mean_std, summarize
from cl_nlp.evaluation.across_runs import group_verdicts
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention_overall import assess_run
from tests.evaluation.constructed import constructed_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


def test_mean_std_is_the_sample_std_over_finite_values():
    s = mean_std([0.5, 0.7, NAN])
    assert s.n == 2 and s.mean == pytest.approx(0.6) and s.std == pytest.approx(math.sqrt(0.02))  # (0.1² + 0.1²)/1
    assert s.std == pytest.approx(statistics.stdev([0.5, 0.7]))
    one = mean_std([0.25])
    assert one.mean == 0.25 and math.isnan(one.std) and one.n == 1
    assert mean_std([]).n == 0 and math.isnan(mean_std([NAN]).mean)


def test_cells_show_mean_std_count_and_na():
    assert format_cell(mean_std([0.5, 0.7]), 2) == "0.600 ± 0.141"
    assert format_cell(mean_std([-0.5, -0.3]), 2, "+.3f") == "-0.400 ± 0.141"
    assert format_cell(mean_std([0.5]), 2) == "0.500 (n=1)"  # one of two runs had the metric
    assert format_cell(mean_std([]), 2) == "n/a"


def test_summary_rows_average_each_metric_over_the_runs_that_have_it():
    rows = summarize({"naive": [{"final/acc": 0.2, "final/bwt": -0.8}, {"final/acc": 0.4, "final/bwt": -0.6}],
                      "replay": [{"final/acc": 0.9, "final/probe_acc": 0.95}]}, {"replay": 1})
    naive, replay = rows
    assert naive.stats["acc"].mean == pytest.approx(0.3) and naive.stats["bwt"].mean == pytest.approx(-0.7)
    assert naive.stats["probe_acc"].n == 0  # no run logged probes: n/a, not 0
    assert replay.runs == 1 and replay.failed == 1 and replay.stats["probe_acc"].mean == 0.95


def test_seed_mean_std_cellwise_with_unmeasured_cells():
    a = np.array([[0.8, NAN], [0.2, 0.9]])
    b = np.array([[0.6, NAN], [0.4, NAN]])
    mean, std, count = seed_mean_std([a, b])
    assert mean[0, 0] == pytest.approx(0.7) and std[0, 0] == pytest.approx(statistics.stdev([0.8, 0.6]))
    assert mean[1, 0] == pytest.approx(0.3) and mean[1, 1] == 0.9 and math.isnan(std[1, 1])  # one run only
    assert math.isnan(mean[0, 1]) and count.tolist() == [[2, 0], [2, 1]]


def _run(strategy, seed, stream="clinc-cil", tasks=("t1", "t2"), status="FINISHED", acc=0.5, params=None):
    results = Results(list(tasks), "class-incremental")
    for i in range(len(tasks)):
        for j in range(i + 1):
            results.record("live", i + 1, j, acc if i == j else acc / 2)
    results.stages_done = len(tasks)
    return ComparedRun(f"id-{strategy}-{seed}", f"{strategy}-seed{seed}", strategy, stream, str(seed), status,
                       {"final/acc": acc}, {"seed": str(seed), **(params or {})}, results)


def test_runs_of_different_streams_are_refused_with_a_filter_hint():
    with pytest.raises(UserError, match="different streams .*clinc-cil: 1 run, banking-cil: 1 run.*--filter"):
        select_runs([_run("naive", 0), _run("naive", 1, stream="banking-cil")])
    with pytest.raises(UserError, match="different task lists"):
        select_runs([_run("naive", 0), _run("naive", 1, tasks=("t1", "t2", "t3"))])


def test_unfinished_and_untagged_runs_are_left_out_with_a_reason():
    failed = _run("ewc", 0, status="FAILED")
    failed.reason = "RuntimeError: boom"
    parent = _run("x", 0)
    parent.strategy = None
    kept, notes = select_runs([_run("naive", 0), failed, parent])
    assert [r.strategy for r in kept] == ["naive"]
    assert any("FAILED: RuntimeError: boom" in n for n in notes) and any("no strategy tag" in n for n in notes)


def test_groups_split_a_strategy_whose_settings_differ_but_not_its_seeds():
    runs = [_run("ewc", s, params={"strategy.lambda": lam, "output": f"o{s}"}) for s, lam in
            [(0, "100"), (1, "100"), (2, "1000")]] + [_run("naive", 0), _run("naive", 1)]
    groups = group_runs(runs)
    assert {k: len(v) for k, v in groups.items()} == {"ewc (strategy.lambda=100)": 2, "ewc (strategy.lambda=1000)": 1,
                                                       "naive": 2}


def test_write_comparison_files_and_table(tmp_path):
    runs = [_run("naive", 0, acc=0.2), _run("naive", 1, acc=0.4), _run("replay", 0, acc=0.9)]
    failed = _run("replay", 1, status="FAILED")
    comp = write_comparison([*runs, failed], tmp_path / "cmp")
    assert "| naive | 2 | 0.300 ± 0.141 |" in comp.table
    assert "| replay | 1 (1 failed) | 0.900 |" in comp.table
    for name in ("forgetting_curves.png", "final_matrices.png"):
        assert (tmp_path / "cmp" / name).read_bytes()[:8] == PNG_SIGNATURE
    assert "![forgetting curves](forgetting_curves.png)" in (tmp_path / "cmp" / "report.md").read_text()
    header, naive_row, _ = (tmp_path / "cmp" / "summary.csv").read_text().splitlines()
    row = dict(zip(header.split(","), naive_row.split(",")))
    assert float(row["acc_mean"]) == pytest.approx(0.3) and float(row["acc_std"]) == pytest.approx(statistics.stdev([0.2, 0.4]))


def test_matrices_rebuilt_from_metric_histories(tracking_uri):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.create_run(client.create_experiment("rebuild"), tags={"scenario": "class-incremental"})
    # Stage 1 learned t1; stage 2 learned t2 (t1 dropped to 0.25); "acc_avg" must not become a task.
    logged = [("acc/t1", 0.75, 1), ("acc/t1", 0.25, 2), ("acc/t2", 0.5, 2), ("acc_avg", 0.375, 2),
              ("task_aware_acc/t1", 1.0, 1), ("task_aware_acc/t1", 0.5, 2), ("task_aware_acc/t2", 0.75, 2)]
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, s) for k, v, s in logged])
    results = rebuild_results(client, client.get_run(run.info.run_id))
    assert results.task_names == ["t1", "t2"] and results.stages_done == 2
    np.testing.assert_array_equal(results.matrix("live"), [[0.75, NAN], [0.25, 0.5]])
    np.testing.assert_array_equal(results.matrix("task_aware"), [[1.0, NAN], [0.5, 0.75]])


def _matrix_run(strategy, seed, diagonal):
    """A 3-task run whose live accuracy right after learning task k is ``diagonal[k]``."""
    run = _run(strategy, seed, tasks=("t1", "t2", "t3"))
    for k, value in enumerate(diagonal):
        run.results.record("live", k + 1, k, value)
    return run


def test_intransigence_is_measured_against_the_joint_runs_diagonal(tmp_path):
    joint = [_matrix_run("joint", 0, [0.9, 0.8, 0.7]), _matrix_run("joint", 1, [0.9, 0.6, 0.9])]  # a* = 0.9, 0.7, 0.8
    ewc = [_matrix_run("ewc", 0, [0.9, 0.5, 0.5]), _matrix_run("ewc", 1, [0.9, 0.7, 0.2])]
    comparison = write_comparison([*joint, *ewc], tmp_path)
    rows = {row.strategy: row for row in comparison.rows}
    # by hand: seed 0: (0 + 0.2 + 0.3) / 3; seed 1: (0 + 0 + 0.6) / 3
    by_seed = [(0.0 + 0.2 + 0.3) / 3, (0.0 + 0.0 + 0.6) / 3]
    assert rows["ewc"].stats["intransigence"].mean == pytest.approx(statistics.mean(by_seed))
    assert rows["ewc"].stats["intransigence"].std == pytest.approx(statistics.stdev(by_seed))
    assert rows["joint"].stats["intransigence"].mean == pytest.approx(0.0)
    assert "| intransigence |" in comparison.table
    without_joint = write_comparison(ewc, tmp_path / "no-joint")
    assert "intransigence" not in without_joint.table and "intransigence" not in without_joint.rows[0].stats


def test_counts_are_printed_in_good_grammar():
    from cl_nlp.comparison.comparison import plural

    assert [plural(1, "finished run"), plural(2, "group"), plural(1, "strategy", "strategies"),
            plural(3, "strategy", "strategies")] == ["1 finished run", "2 groups", "1 strategy", "3 strategies"]


# ---- the retention verdict across runs ----


def _verdict_run(strategy, seed, final_live, p0=0.97):
    results = constructed_run([[0.95], [final_live, 0.95]], [[0.98], [0.97, 0.98]], [p0, p0], per_class=20)
    run = ComparedRun(f"id-{strategy}-{seed}", f"{strategy}-seed{seed}", strategy, "s", str(seed), "FINISHED",
                      {"final/acc": 0.5}, {"seed": str(seed)}, results)
    return run


def test_verdict_quantities_get_a_t_interval_across_runs_and_answers_only_where_runs_agree(tmp_path):
    naive = [_verdict_run("naive", s, v) for s, v in enumerate((0.10, 0.20, 0.15))]
    mixed = [_verdict_run("ewc", 0, 0.10), _verdict_run("ewc", 1, 0.93, p0=0.40)]
    (g_naive, g_mixed) = group_verdicts({"naive": [r.results for r in naive], "ewc": [r.results for r in mixed]})
    changes = [assess_run(r.results).aggregates["live_change"].value for r in naive]
    assert changes == pytest.approx([0.10 - 0.95, 0.20 - 0.95, 0.15 - 0.95])
    mean, lo, hi, n = g_naive.stats["live_change"]
    ref = stats.t.interval(0.95, 2, loc=np.mean(changes), scale=stats.sem(changes))
    assert n == 3 and (mean, lo, hi) == pytest.approx((np.mean(changes), *ref))
    assert g_naive.category == "readout" and g_naive.source == "pretraining"
    assert g_naive.answer(g_naive.sources, g_naive.source) == "pretraining (3 of 3 runs)"
    assert g_mixed.category is None and g_mixed.source is None
    assert g_mixed.answer(g_mixed.categories, None) == "no answer: runs disagree (1 readout, 1 not_forgotten)"
    comparison = write_comparison([*naive, *mixed], tmp_path / "cmp")
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "## Retention verdict across runs" in report
    assert "- **naive**: forgetting — readout (3 of 3 runs); knowledge source — pretraining (3 of 3 runs)." in report
    assert [g.label for g in comparison.verdicts] == ["naive", "ewc"]
