"""Derived retention numbers on hand-made matrices, every expected value worked out by hand."""

import numpy as np
import pytest

from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import (final_retention_metrics, recoverable_share, representation_gain,
                                         retention_matrix, retention_summary, task_table)

nan = np.nan
LIVE = np.array([[0.90, nan, nan],
                 [0.40, 0.80, nan],
                 [0.20, 0.30, 0.85]])
PROBE = np.array([[0.95, nan, nan],
                  [0.90, 0.92, nan],
                  [0.70, 0.91, 0.93]])
P0 = np.array([0.80, 0.91, 0.60])
CKA = np.array([[1.0, nan, nan],
                [0.8, 1.0, nan],
                [0.6, 0.7, 1.0]])


def hand_made(live=LIVE, probe=PROBE, p0=P0, cka=CKA, names=("clinc1", "clinc2", "clinc3")) -> Results:
    r = Results(list(names), "class-incremental")
    r.matrices["live"] = np.array(live, dtype=float)
    r.matrices["task_aware"] = np.array(live, dtype=float)
    if probe is not None:
        r.matrices["probe"] = np.array(probe, dtype=float)
        r.before["probe"] = np.array(p0, dtype=float)
    if cka is not None:
        r.matrices["cka"] = np.array(cka, dtype=float)
    r.stages_done = len(names)
    return r


def test_recoverable_share_at_the_end():
    drop, recovered, share, overall = recoverable_share(LIVE, PROBE, stage=3)
    # task 1: best live 0.90, now 0.20 -> drop 0.70; probe 0.70 is 0.50 above live
    # task 2: best live 0.80, now 0.30 -> drop 0.50; probe 0.91 is 0.61 above live, capped at the drop
    assert drop == pytest.approx([0.70, 0.50])
    assert recovered == pytest.approx([0.50, 0.50])
    assert share == pytest.approx([0.5 / 0.7, 1.0])
    assert overall == pytest.approx(1.0 / 1.2)


def test_recoverable_share_mid_stream_uses_that_stage():
    drop, recovered, share, overall = recoverable_share(LIVE, PROBE, stage=2)
    assert drop == pytest.approx([0.50]) and recovered == pytest.approx([0.50]) and overall == pytest.approx(1.0)


def test_probe_below_live_recovers_nothing_and_small_drops_are_left_out():
    live = np.array([[0.90, nan, nan], [0.60, 0.90, nan], [0.50, 0.89, 0.9]])
    probe = np.array([[0.90, nan, nan], [0.50, 0.90, nan], [0.40, 0.95, 0.9]])
    drop, recovered, share, overall = recoverable_share(live, probe, stage=3)
    # task 1 dropped 0.40 and the probe (0.40) is below live (0.50): 0 recovered
    # task 2 dropped 0.01 < MIN_DROP: no share, and not part of the overall share
    assert drop == pytest.approx([0.40, 0.01])
    assert share[0] == 0.0 and np.isnan(share[1])
    assert overall == 0.0


def test_no_meaningful_drop_gives_nan():
    live = np.array([[0.9, nan], [0.89, 0.9]])
    assert np.isnan(recoverable_share(live, live, stage=2)[3])


def test_representation_gain_and_surviving_share():
    gain, share, overall = representation_gain(PROBE, P0, stage=3)
    assert gain == pytest.approx([0.15, 0.01, 0.33])
    # task 1: final probe 0.70 is 0.10 below the pretrained 0.80 -> -0.10 / 0.15
    # task 2: gain 0.01 < MIN_GAIN -> undefined; task 3 just learned keeps all its gain
    assert share[0] == pytest.approx(-0.1 / 0.15) and np.isnan(share[1]) and share[2] == pytest.approx(1.0)
    assert overall == pytest.approx(-0.1 / 0.15)  # only earlier tasks enter the aggregate


def test_retention_matrix():
    R = retention_matrix(LIVE)
    assert R[2, 0] == pytest.approx(0.2 / 0.9) and R[1, 0] == pytest.approx(0.4 / 0.9)
    assert R[2, 1] == pytest.approx(0.3 / 0.8) and np.isnan(R[0, 1])
    assert np.allclose(np.diag(R), 1.0)


def test_task_table_side_by_side():
    rows = task_table(hand_made())
    first = rows[0]
    assert first["task"] == "clinc1"
    assert (first["pretrained_probe"], first["probe_after_learning"], first["final_probe"]) == (0.80, 0.95, 0.70)
    assert (first["live_after_learning"], first["final_live"]) == (0.90, 0.20)
    assert first["live_retention"] == pytest.approx(0.2 / 0.9)
    assert first["probe_retention"] == pytest.approx(0.70 / 0.95)
    assert first["cka"] == 0.6 and first["learned_well"]
    assert np.isnan(rows[2]["live_drop"]) and np.isnan(rows[2]["recoverable_share"])  # the last task forgot nothing


def test_summary_and_final_metrics():
    results = hand_made()
    s = retention_summary(results)
    assert s["live_drop"] == pytest.approx(0.6) and s["recovered"] == pytest.approx(0.5)
    assert s["recoverable_share"] == pytest.approx(1 / 1.2)
    assert s["pretrained_probe_acc"] == pytest.approx((0.80 + 0.91 + 0.60) / 3)
    assert s["probe_acc"] == pytest.approx((0.70 + 0.91 + 0.93) / 3)
    assert s["probe_bwt"] == pytest.approx(((0.70 - 0.95) + (0.91 - 0.92)) / 2)
    assert s["cka"] == pytest.approx(0.65)
    assert s["gained_tasks"] == ["clinc1", "clinc3"] and s["not_learned_well"] == []
    results.timings.update({"run_seconds": 100.0, "probe_seconds/pretrained": 4.0, "probe_seconds/clinc1": 6.0})
    final = final_retention_metrics(results)
    for key in ("final/probe_acc", "final/probe_bwt", "final/probe_forgetting", "final/recoverable_share",
                "final/pretrained_probe_acc"):
        assert key in final
    assert final["final/probe_forgetting"] == pytest.approx(((0.95 - 0.70) + (0.92 - 0.91)) / 2)
    assert final["final/probe_time_share"] == pytest.approx(0.10)


def test_without_probes_only_live_numbers_are_defined():
    s = retention_summary(hand_made(probe=None))
    assert s["live_drop"] == pytest.approx(0.6)
    assert np.isnan(s["recoverable_share"]) and np.isnan(s["probe_acc"])


def test_poorly_learned_tasks_are_named():
    live = LIVE.copy()
    live[1, 1] = 0.5
    assert retention_summary(hand_made(live=live))["not_learned_well"] == ["clinc2"]
