"""Metric keys from one module, checked on a hand-worked matrix."""

from __future__ import annotations

import math

from cl_nlp.evaluation.metric_keys import METRIC_PREFIX, accuracy_metrics, final_metrics, strategy_metrics, task_key
from cl_nlp.evaluation.results import Results


def hand_worked() -> Results:
    results = Results(["a", "b", "c"], "class-incremental")
    live = [[0.9, 0.1, 0.0], [0.5, 0.8, 0.2]]  # stage 3 not reached
    aware = [[0.95, 0.5, 0.4], [0.9, 0.85, 0.5]]
    for stage, (row_l, row_a) in enumerate(zip(live, aware), start=1):
        for j in range(3):
            results.record("live", stage, j, row_l[j])
            results.record("task_aware", stage, j, row_a[j])
    for j, (b_l, b_a) in enumerate(zip([0.0, 0.05, 0.1], [0.3, 0.35, 0.3])):
        results.record("live", 0, j, b_l)
        results.record("task_aware", 0, j, b_a)
    results.stages_done = 2
    return results


def test_accuracy_keys_after_two_of_three_tasks():
    out = accuracy_metrics(hand_worked(), 2)
    assert out["acc/a"] == 0.5 and out["acc/b"] == 0.8 and "acc/c" not in out
    assert out["task_aware_acc/a"] == 0.9 and out["task_aware_acc/b"] == 0.85
    # By hand (1-based tasks): ACC = (0.5 + 0.8) / 2; BWT = R[2][1] - R[1][1] = 0.5 - 0.9;
    # forgetting = the drop on task 1 = 0.4; FWT = R[1][2] (task 2 before learning it) - b_2 = 0.1 - 0.05.
    assert math.isclose(out["acc_avg"], 0.65)
    assert math.isclose(out["bwt"], -0.4)
    assert math.isclose(out["forgetting"], 0.4)
    assert math.isclose(out["fwt"], 0.1 - 0.05)
    assert math.isclose(out["acc_avg_task_aware"], 0.875)
    assert math.isclose(out["bwt_task_aware"], 0.9 - 0.95)


def test_prefixes_and_final_keys():
    assert task_key("live", "a") == "acc/a" and task_key("probe", "a") == "probe_acc/a" and task_key("cka", "a") == "cka/a"
    assert set(METRIC_PREFIX) >= {"live", "task_aware", "probe"}
    assert strategy_metrics({"fill": 3.0}) == {"strategy/fill": 3.0}
    results = hand_worked()
    results.timings.update({"run_seconds": 10.0, "train_seconds/a": 2.0, "train_seconds/b": 3.0})
    final = final_metrics(results)
    assert math.isclose(final["final/acc"], 0.65) and math.isclose(final["final/acc_task_aware"], 0.875)
    assert final["final/run_seconds"] == 10.0 and final["final/train_seconds"] == 5.0
