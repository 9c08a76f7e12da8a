"""The MLflow tracker keeps its own clock: what logging cost a run, store set-up included."""

from __future__ import annotations

from cl_nlp.tracking import Tracker, make_tracker


def test_tracker_time_adds_up_every_call_and_the_no_op_costs_nothing(tmp_path):
    tracker = make_tracker(True, f"sqlite:///{tmp_path / 'mlflow.db'}", "clock")
    after_setup = tracker.seconds
    assert after_setup > 0  # import mlflow + creating the store's tables
    tracker.start("r", {"a": 1}, {"strategy": "naive"})
    after_start = tracker.seconds
    tracker.log_metrics({"acc/t1": 0.5}, step=1)
    tracker.end("FINISHED")
    assert after_setup < after_start < tracker.seconds
    assert Tracker().seconds == 0.0
