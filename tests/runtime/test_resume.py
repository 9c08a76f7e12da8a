"""Checkpoints and resume on real runs: a run killed after its second task and resumed ends with
the same numbers (and weights) as one that was never interrupted; so does a rerun of the same
config and seed; a NaN loss stops the run and leaves the previous checkpoint resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from cl_nlp.cli import main
from cl_nlp.config import load_config
from cl_nlp.experiment import run_experiment
from cl_nlp.strategies import strategy_names
from cl_nlp.strategies.base import Strategy
from cl_nlp.strategies.registry import _STRATEGIES, register_strategy
from cl_nlp.tracking import Tracker

# Three tasks, trained hard enough (lr 3e-3) that accuracies and weights move at every stage; the
# finished runs keep their last checkpoint, whose weights the tests compare.
TINY3 = ["stream.n_tasks=3", "stream.classes_per_task=3", "stream.train_per_class=8", "stream.test_per_class=4",
         "train.epochs=2", "train.batch_size=8", "train.lr=0.003", "save.keep_checkpoint=true"]


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


def comparable(results: dict) -> dict:
    """The results JSON without wall-clock times (the only part allowed to differ)."""
    if isinstance(results, dict):
        return {k: comparable(v) for k, v in results.items() if k != "timings" and "seconds" not in k}
    return results


def read(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    (stage,) = sorted((run_dir / "checkpoints").iterdir())
    return load_file(stage / "model.safetensors")


@pytest.fixture(scope="module")
def reference_run(tiny_model, tmp_path_factory) -> Path:
    """One uninterrupted run (in-process, no tracking): what the others must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    main(["run", "--model", tiny_model, "--output", str(out), "--run-name", "ref", "--no-tracking", *sets(*TINY3)])
    return out / "ref"


def test_same_config_and_seed_twice_gives_identical_results(reference_run, tiny_model, tmp_path):
    main(["run", "--model", tiny_model, "--output", str(tmp_path), "--run-name", "again", "--no-tracking", *sets(*TINY3)])
    first, second = read(reference_run), read(tmp_path / "again")
    assert second["stages_done"] == 3
    assert comparable(second) == comparable(first)
    a, b = final_weights(reference_run), final_weights(tmp_path / "again")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The run learned something, so equality above is not equality of untouched numbers.
    ref = read(reference_run)["matrices"]["live"]
    assert len({v for row in ref for v in row if v is not None}) > 1


@pytest.mark.slow
def test_killed_after_second_task_then_resumed_equals_uninterrupted(reference_run, tiny_model, tmp_path, tracking_uri):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "cl_nlp.cli", "run", "--model", tiny_model, "--output", str(tmp_path),
           "--run-name", "killed", "--tracking-uri", tracking_uri, "--experiment", "resume", *sets(*TINY3)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marker = run_dir / "checkpoints" / "stage-002" / "state.json"
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), f"no checkpoint of stage 2 appeared: {proc.poll()=} {proc.stderr.read() if proc.poll() is not None else ''}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "checkpoints" / "stage-003").exists(), "killed too late: the third task had finished"
    assert json.loads((run_dir / "status.json").read_text())["status"] == "RUNNING"  # nothing could record the kill

    main(["run", "--resume", str(run_dir)])

    resumed = read(run_dir)
    assert resumed["stages_done"] == 3
    assert comparable(resumed) == comparable(read(reference_run))
    a, b = final_weights(reference_run), final_weights(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((run_dir / "status.json").read_text())["status"] == "FINISHED"

    # One MLflow run across both processes, reopened and finished, with every stage's metrics.
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["cl_nlp.resumed_after_task"] == "2"
    assert sorted({m.step for m in client.get_metric_history(run.info.run_id, "acc/clinc1")}) == [1, 2, 3]
    assert client.get_metric_history(run.info.run_id, "acc/clinc3")[-1].value == resumed["matrices"]["live"][2][2]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"results.json", "status.json"} <= artifacts and "checkpoints" not in artifacts  # weights stay local
    assert ".lock" not in artifacts


def test_resume_of_a_finished_run_changes_nothing_and_a_second_start_is_refused(reference_run, capsys):
    before = read(reference_run)
    main(["run", "--resume", str(reference_run), "--no-tracking"])
    assert comparable(read(reference_run)) == comparable(before)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--output", str(reference_run.parent), "--run-name", "ref", "--no-tracking"])
    assert exit_info.value.code == 2
    assert "already holds a run" in capsys.readouterr().err


@dataclass
class NanOptions:
    nan_task: int = 2  # the (1-based) task whose penalty is NaN


class NanAtTask(Strategy):
    """Test strategy: a NaN penalty while training one chosen task."""

    def penalty(self, model, batch):
        if int(batch["task_ids"][0]) + 1 == self.options.nan_task:
            return torch.tensor(float("nan"))
        return None


if "test-nan" not in _STRATEGIES:
    register_strategy("test-nan", NanOptions, NanAtTask)


def test_nan_loss_stops_the_run_and_the_last_checkpoint_resumes(tiny_model, tmp_path, capsys, tracking_uri):
    run_dir = tmp_path / "nan"
    args = ["run", "--strategy", "test-nan", "--model", tiny_model, "--output", str(tmp_path), "--run-name", "nan",
            "--tracking-uri", tracking_uri, "--experiment", "nan", *sets(*TINY3)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training loss became nan")
    assert f"the checkpoint after task 1 is kept: `cl-nlp run --resume {run_dir}`" in err[0]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "FAILED" and status["checkpoint"] == "checkpoints/stage-001"
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["stage-001"]
    weights = load_file(run_dir / "checkpoints" / "stage-001" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    after_first = read(run_dir)["matrices"]["live"][0]
    client = MlflowClient(tracking_uri)
    (failed,) = client.search_runs([client.get_experiment_by_name("nan").experiment_id])
    assert failed.info.status == "FAILED"
    assert failed.data.tags["failure_reason"].startswith("NonFiniteLoss: training loss became nan")

    main(["run", "--resume", str(run_dir), *sets("strategy.nan_task=99")])
    resumed = read(run_dir)
    assert resumed["stages_done"] == 3 and resumed["matrices"]["live"][0] == after_first
    assert all(v is not None for v in resumed["matrices"]["live"][2])
    finished = client.get_run(failed.info.run_id)
    assert finished.info.status == "FINISHED"  # the same MLflow run, finished
    # ...without the stale reason of its earlier failure, which is kept as history.
    assert "failure_reason" not in finished.data.tags
    assert finished.data.tags["cl_nlp.earlier_failure"].startswith("NonFiniteLoss: training loss became nan")


class InterruptAtStage(Tracker):
    """No-op tracker that interrupts the run when stage ``stage``'s metrics arrive (before its checkpoint)."""

    def __init__(self, stage: int):
        self.stage = stage

    def log_metrics(self, values, step):
        if "acc_avg" in values and step == self.stage:
            raise KeyboardInterrupt


# Small enough that every strategy's state is exercised (a Fisher, a full buffer) in seconds.
STRATEGY_OPTIONS = {"ewc": ["strategy.fisher_samples=8"], "replay": ["strategy.size=6", "strategy.per_batch=4"]}


# naive is covered by the SIGKILL test above; this covers each strategy's own state.
@pytest.mark.slow
@pytest.mark.parametrize("strategy", [s for s in strategy_names() if s != "naive" and not s.startswith(("test-", "avalanche"))])
def test_every_strategy_resumes_to_the_uninterrupted_result(strategy, tiny_model, tmp_path):
    def config(run_name):
        cfg = load_config(None, [*TINY3[1:], "stream.n_tasks=2", "train.epochs=1", "tracking.enabled=false",
                                 *STRATEGY_OPTIONS.get(strategy, [])], strategy=strategy, model=tiny_model)
        cfg.output, cfg.run_name = str(tmp_path), run_name
        return cfg

    quiet = lambda line: None  # noqa: E731
    run_experiment(config("whole"), echo=quiet)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config("cut"), tracker=InterruptAtStage(2), echo=quiet)
    assert json.loads((tmp_path / "cut" / "status.json").read_text())["status"] == "KILLED"
    run_experiment(config("cut"), echo=quiet, resume=True)
    whole, cut = read(tmp_path / "whole"), read(tmp_path / "cut")
    assert cut["stages_done"] == 2 and comparable(cut) == comparable(whole)
    a, b = final_weights(tmp_path / "whole"), final_weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
