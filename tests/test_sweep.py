"""A sweep and a comparison against a real ``mlflow server`` on loopback, read back independently.

One server per module (start-up takes 12-22 s); the process group is always killed at the end.
The grid: naive and a test-local ``l2`` strategy (a weight penalty, so its numbers differ) × 2
seeds, plus a ``broken`` strategy whose construction crashes, to check that a failed child is
recorded and does not stop the others.
"""

import csv
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from cl_nlp.cli import main
from cl_nlp.comparison.runs import rebuild_results
from cl_nlp.strategies import strategy_names
from cl_nlp.strategies.base import Strategy
from cl_nlp.strategies.registry import register_strategy
from tests.conftest import FAST_TRAIN, SMALL_STREAM

pytestmark = pytest.mark.slow
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS = {"acc": "final/acc", "bwt": "final/bwt", "forgetting": "final/forgetting",
           "acc_task_aware": "final/acc_task_aware", "train_seconds": "final/train_seconds"}
OPTIONAL = {"probe_acc": "final/probe_acc", "recoverable_share": "final/recoverable_share"}  # when probes ran


@dataclass
class L2Options:
    weight: float = 1e-3


class L2(Strategy):
    """Test strategy: an L2 penalty on every weight."""

    def penalty(self, model, batch):
        return self.options.weight * sum(p.pow(2).sum() for p in model.parameters())


class Broken(Strategy):
    """Test strategy that crashes when it is built."""

    def __init__(self, options=None, context=None):
        raise RuntimeError("boom: broken on purpose")


for _name, _opts, _cls in (("test-l2", L2Options, L2), ("test-broken", L2Options, Broken)):
    if _name not in strategy_names():
        register_strategy(_name, _opts, _cls)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    exe = Path(sys.executable).with_name("mlflow")
    exe = str(exe) if exe.exists() else shutil.which("mlflow")
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([exe, "server", "--backend-store-uri", f"sqlite:///{tmp / 'db.sqlite'}",
                             "--artifacts-destination", str(tmp / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start:\n" + (tmp / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def sets(*items):
    return [x for item in items for x in ("--set", item)]


def _expected(children, strategy):
    """mean and sample std (statistics.stdev) of each final metric over a strategy's finished children."""
    finished = [c for c in children if c.data.tags["strategy"] == strategy and c.info.status == "FINISHED"]
    out = {}
    for short, key in {**METRICS, **OPTIONAL}.items():
        values = [c.data.metrics[key] for c in finished if key in c.data.metrics]
        if short in METRICS:
            assert len(values) == len(finished), key
        # An optional metric is logged only where the run defines it (recoverable_share needs a
        # significant live drop); the table marks a partial one (n=k), checked in test_comparison.
        if len(values) == len(finished):
            out[short] = (statistics.mean(values), statistics.stdev(values))
    return out


def _csv_rows(path):
    with open(path, newline="") as fh:
        return {row["strategy"]: row for row in csv.DictReader(fh)}


def test_sweep_then_compare_against_a_server(server, tiny_model, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # exit 1: one strategy's children failed
        main(["sweep", "--strategies", "naive,test-l2,test-broken", "--seeds", "0,1", "--model", tiny_model,
              "--output", str(tmp_path / "runs"), "--run-name", "grid", "--tracking-uri", server,
              "--experiment", "sweep-test", "--strategy-set", "test-l2.weight=0.01",
              *sets(*SMALL_STREAM, *FAST_TRAIN, "train.lr=5e-3")])
    assert exit_info.value.code == 1
    printed = capsys.readouterr().out
    assert "[6/6] test-broken seed 1: FAILED: RuntimeError: boom" in printed
    assert "| strategy | seeds | ACC |" in printed

    client = MlflowClient(server)
    exp = client.get_experiment_by_name("sweep-test")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`cl_nlp.kind` = 'sweep'")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_children"] == "2"
    assert "2 of 6 child runs failed" in parent.data.tags["mlflow.note.content"]
    assert sorted((c.data.tags["strategy"], c.data.tags["seed"], c.info.status) for c in children) == [
        ("naive", "0", "FINISHED"), ("naive", "1", "FINISHED"), ("test-broken", "0", "FAILED"),
        ("test-broken", "1", "FAILED"), ("test-l2", "0", "FINISHED"), ("test-l2", "1", "FINISHED")]
    assert all(c.data.tags["stream"] == "clinc-cil" for c in children)
    broken = [c for c in children if c.info.status == "FAILED"]
    assert all("boom" in c.data.tags["failure_reason"] for c in broken)
    assert all("error.txt" in {a.path for a in client.list_artifacts(c.info.run_id)} for c in broken)
    l2_child = next(c for c in children if c.data.tags["strategy"] == "test-l2")
    assert l2_child.data.params["strategy.weight"] == "0.01"  # --strategy-set reached only that strategy

    expected = {s: _expected(children, s) for s in ("naive", "test-l2")}
    sweep_csv = _csv_rows(tmp_path / "runs" / "grid" / "comparison" / "summary.csv")
    for strategy, stats in expected.items():
        for short, (mean, std) in stats.items():
            assert float(sweep_csv[strategy][f"{short}_mean"]) == pytest.approx(mean, abs=1e-12)
            assert float(sweep_csv[strategy][f"{short}_std"]) == pytest.approx(std, abs=1e-12)
            assert parent.data.metrics[f"summary/{strategy}/{short}_mean"] == pytest.approx(mean, abs=1e-12)
    assert sweep_csv["test-broken"]["runs"] == "0" and sweep_csv["test-broken"]["failed"] == "2"
    assert {"summary.md", "summary.csv", "forgetting_curves.png", "final_matrices.png", "report.md"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)}

    # The results.json artifact and the matrix rebuilt from acc/<task> histories agree.
    local = tmp_path / "dl"
    local.mkdir()
    downloaded = json.loads(Path(client.download_artifacts(l2_child.info.run_id, "results.json", str(local))).read_text())
    live = np.array(downloaded["matrices"]["live"], dtype=float)
    rebuilt = rebuild_results(client, l2_child).matrix("live")
    learned = np.tril(np.ones_like(live, dtype=bool))  # acc/<task> is logged once the task is learned
    np.testing.assert_allclose(rebuilt[learned], live[learned])

    # compare on the parent, from the server, logged back into the parent.
    out = tmp_path / "cmp"
    main(["compare", "--parent", parent.info.run_id, "--tracking-uri", server, "--output", str(out), "--log"])
    printed = capsys.readouterr().out
    assert "test-broken seed 0 is FAILED: RuntimeError: boom" in printed
    compare_csv = _csv_rows(out / "summary.csv")
    for strategy, stats in expected.items():
        mean, std = stats["acc"]
        assert float(compare_csv[strategy]["acc_mean"]) == pytest.approx(mean, abs=1e-12)
        assert float(compare_csv[strategy]["acc_std"]) == pytest.approx(std, abs=1e-12)
        assert f"| {strategy} | 2 | {mean:.3f} ± {std:.3f} |" in (out / "summary.md").read_text()
        if math.isfinite(stats["bwt"][1]):
            bwt = f"{stats['bwt'][0]:+.3f} ± {stats['bwt'][1]:.3f}"
            assert bwt in (out / "summary.md").read_text()
    for name in ("forgetting_curves.png", "final_matrices.png"):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert "comparison/forgetting_curves.png" in logged and "comparison/summary.csv" in logged


def test_sweep_refuses_unknown_strategies_before_starting(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--strategies", "naive,nope", "--no-tracking", "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown strategy 'nope'")
    assert not any(tmp_path.iterdir())


def test_sweep_takes_the_run_options():
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "sweep", "--help"], capture_output=True, text=True)
    for flag in ("--strategies", "--seeds", "--strategy-set", "--stream", "--config", "--model", "--set",
                 "--output", "--tracking-uri", "--experiment", "--no-tracking"):
        assert flag in out.stdout


def test_sweep_over_class_orders_runs_each_order_and_averages_them(tiny_model, tmp_path, capsys):
    main(["sweep", "--strategies", "naive", "--seeds", "0", "--orders", "3,4", "--model", tiny_model,
          "--output", str(tmp_path), "--run-name", "orders", "--no-tracking", *sets(*SMALL_STREAM, *FAST_TRAIN)])
    printed = capsys.readouterr().out
    assert "1 strategy x 1 seed x 2 class orders = 2 runs" in printed and "[2/2] naive seed 0 order 4: finished" in printed
    from cl_nlp.config import read_yaml
    from cl_nlp.streams import build_stream

    classes = {}
    for order in (3, 4):
        run = tmp_path / "orders" / f"naive-seed0-order{order}"
        stream_cfg = read_yaml(run / "config.yaml")["stream"]
        assert stream_cfg["class_order_seed"] == order
        options = {k: v for k, v in stream_cfg.items() if k != "name"}
        classes[order] = [c for t in build_stream("clinc-cil", options).tasks for c in t.class_ids]
        assert json.loads((run / "results.json").read_text())["stages_done"] == 2
    names = {o: [build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 3, "class_order_seed": o}).class_names[c]
                 for c in classes[o]] for o in (3, 4)}
    assert names[3] != names[4]  # the orders really put other intents in the tasks
    summary = _csv_rows(tmp_path / "orders" / "comparison" / "summary.csv")
    assert list(summary) == ["naive"] and summary["naive"]["runs"] == "2"  # one group: orders are replicates


def test_orders_need_a_stream_with_class_orders(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--strategies", "naive", "--orders", "0,1", "--stream", "topics", "--no-tracking",
              "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--orders sets stream.class_order_seed, which stream 'topics' does not have" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
