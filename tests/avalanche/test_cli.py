"""`cl-nlp run --strategy avalanche:<Name>` end to end on a tiny random BERT, read back from MLflow."""

import json

import pytest

pytest.importorskip("avalanche", reason="the avalanche extra is not installed (see .ci/avalanche)")

from mlflow.tracking import MlflowClient  # noqa: E402

from cl_nlp.cli import main  # noqa: E402
from tests.conftest import FAST_TRAIN, SMALL_STREAM  # noqa: E402

RUNS = {  # run name -> (strategy, stream, extra --set)
    "lwf": ("avalanche:LwF", "clinc-cil", ["strategy.alpha=0.5"]),
    "ewc": ("avalanche:EWC", "clinc-cil", ["strategy.ewc_lambda=50"]),
    "replay-til": ("avalanche:Replay", "clinc-til", ["strategy.mem_size=10"]),
    "naive": ("naive", "clinc-cil", []),  # cl-nlp's own loop: the form every run must share
}


def sets(*items):
    return [x for item in items for x in ("--set", item)]


def test_avalanche_strategies_run_through_the_cli_and_log_like_any_run(tiny_model, tmp_path, tracking_uri, capsys):
    for run_name, (strategy, stream, extra) in RUNS.items():
        main(["run", "--strategy", strategy, "--stream", stream, "--model", tiny_model, "--output", str(tmp_path),
              "--run-name", run_name, "--tracking-uri", tracking_uri, "--experiment", "av",
              *sets(*SMALL_STREAM, *FAST_TRAIN, *extra)])
    printed = capsys.readouterr().out
    assert all(f"run {name}: " in printed for name in RUNS) and "Live accuracy" in printed

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("av")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == set(RUNS)
    reference = {k for k in runs["naive"].data.metrics if not k.startswith("strategy/")}
    for run_name, (strategy, stream, extra) in RUNS.items():
        if strategy == "naive":
            continue
        run = runs[run_name]
        assert run.info.status == "FINISHED"
        assert run.data.tags["strategy"] == strategy and run.data.tags["stream"] == stream
        for item in extra:  # options reached the config that was logged
            key, value = item.split("=")
            assert run.data.params[key] == value
        results = json.loads((tmp_path / run_name / "results.json").read_text())
        first = client.get_metric_history(run.info.run_id, "acc/clinc1")
        assert [m.step for m in first] == [1, 2]
        assert first[-1].value == pytest.approx(results["matrices"]["live"][1][0])
        # Same metrics as a cl-nlp run (accuracy, task-aware, probes, summaries), plus Avalanche's own.
        metrics = set(run.data.metrics)
        assert reference <= metrics
        assert {"avalanche/Loss_Epoch/train_phase/train_stream/Task000",
                "avalanche/Top1_Acc_Epoch/train_phase/train_stream/Task000"} <= metrics - reference
        if "mlflow.note.content" in runs["naive"].data.tags:  # the verdict
            assert run.data.tags["mlflow.note.content"]


def test_bad_strategy_option_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--strategy", "avalanche:EWC", "--no-tracking", "--output", str(tmp_path),
              "--set", "strategy.lam=3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: strategy (avalanche:EWC): unknown option 'lam'") and "ewc_lambda" in err
    assert len(err.splitlines()) == 1
