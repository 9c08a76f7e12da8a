"""End to end through the real CLI on a tiny random BERT, read back from MLflow."""

import json
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from cl_nlp.cli import main
from tests.conftest import FAST_TRAIN, SMALL_STREAM


def sets(*items):
    return [x for item in items for x in ("--set", item)]


def test_run_logs_matrix_and_forgetting_curves(tiny_model, tmp_path, tracking_uri, capsys):
    main(["run", "--strategy", "naive", "--model", tiny_model, "--output", str(tmp_path / "runs"),
          "--run-name", "e2e", "--tracking-uri", tracking_uri, "--experiment", "test",
          *sets(*SMALL_STREAM, *FAST_TRAIN)])
    printed = capsys.readouterr().out
    assert "Live accuracy" in printed and "ACC" in printed and "BWT" in printed

    results = json.loads((tmp_path / "runs" / "e2e" / "results.json").read_text())
    assert results["stages_done"] == 2 and len(results["matrices"]["live"]) == 2
    assert (tmp_path / "runs" / "e2e" / "matrix_live.csv").read_text().startswith("after,clinc1,clinc2")

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("test")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["strategy"] == "naive" and run.data.tags["stream"] == "clinc-cil"
    assert run.data.params["train.epochs"] == "1"
    first = client.get_metric_history(run.info.run_id, "acc/clinc1")
    second = client.get_metric_history(run.info.run_id, "acc/clinc2")
    assert [m.step for m in first] == [1, 2] and [m.step for m in second] == [2]
    assert first[-1].value == results["matrices"]["live"][1][0]
    assert client.get_metric_history(run.info.run_id, "train/loss")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "config.yaml", "matrix_live.csv"} <= artifacts

    # The retention question: probe metrics per stage, final summaries, the verdict and its report.
    probe = client.get_metric_history(run.info.run_id, "probe_acc/clinc1")
    assert [m.step for m in probe] == [1, 2] and probe[-1].value == results["matrices"]["probe"][1][0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "cka/clinc1")] == [1, 2]
    assert results["before"]["probe"][0] is not None  # the pretrained encoder's probe
    final = run.data.metrics
    assert {"final/probe_acc", "final/probe_bwt", "final/probe_forgetting", "final/pretrained_probe_acc"} <= set(final)
    assert final["final/pretrained_probe_acc"] == pytest.approx(sum(results["before"]["probe"]) / 2)
    verdict = run.data.tags["mlflow.note.content"]
    assert verdict.startswith("- Verdict: ") and verdict in printed
    assert {"report.md", "retention.json", "retention_curves.png", "matrices.png",
            "classification_report.csv"} <= artifacts

    # Intervals: per task and stage in MLflow, per example in results.json, final bounds.
    lo = client.get_metric_history(run.info.run_id, "probe_acc_lo/clinc1")
    assert [m.step for m in lo] == [1, 2] and lo[-1].value <= probe[-1].value
    assert client.get_metric_history(run.info.run_id, "acc_hi/clinc2")[-1].value >= second[-1].value
    assert results["correct"]["live"]["2"]["clinc1"]["n"] == 12  # 3 intents x 4 test utterances
    # (a 1-epoch tiny random BERT learns nothing above chance, so averages over learned tasks are not logged)
    assert {"final/pretrained_probe_acc_lo", "final/cka_debiased", "final/tasks_learned"} <= set(final)

    # `cl-nlp report` re-derives the same verdict from the run folder alone.
    run_dir = tmp_path / "runs" / "e2e"
    (run_dir / "report.md").unlink()
    main(["report", str(run_dir)])
    assert verdict in capsys.readouterr().out and verdict in (run_dir / "report.md").read_text()


def test_help_is_complete():
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--strategy", "--stream", "--config", "--model", "--seed", "--set", "--output",
                 "--tracking-uri", "--experiment"):
        assert flag in out.stdout


def test_bad_input_is_one_line_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "run", "--strategy", "nope", "--no-tracking",
                          "--output", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: unknown strategy 'nope'")
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_help_prints_an_mlflow_ui_command_that_works_without_an_active_environment():
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "--help"], capture_output=True, text=True)
    assert f"{sys.executable} -m mlflow ui --backend-store-uri sqlite:///mlflow.db" in out.stdout
    run_help = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "run", "--help"], capture_output=True, text=True)
    assert "--keep-checkpoint" in run_help.stdout and "--save-model" in run_help.stdout
