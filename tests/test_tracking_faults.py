"""Tracking outages: a server that does not answer, or a local store that cannot be written,
fails the run within seconds, before training; a server that freezes mid-run costs a bounded
wait; a real `mlflow server` stopped mid-run costs no result (exit status 3, the outage
reported), and the next `--resume` sets the MLflow run's final status."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cl_nlp.cli import main
from cl_nlp.tracking import make_tracker
from cl_nlp.tracking_http import HTTP_DEFAULTS, REACH_TIMEOUT

TINY3 = ["stream.n_tasks=3", "stream.classes_per_task=3", "stream.train_per_class=8", "stream.test_per_class=4",
         "train.epochs=2", "train.batch_size=8"]


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_server_that_never_answers_fails_within_seconds_before_training(tiny_model, tmp_path, capsys):
    # A socket that accepts connections (the kernel's backlog) but never answers: the hard case,
    # where only a timeout ends the wait. MLflow's own client would wait 120 s, 7 times over.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--tracking-uri", uri,
                  *sets(*TINY3)])
        elapsed = time.monotonic() - started
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == (f"error: MLflow tracking server {uri} is not reachable (timed out); start it, "
                                        "pass another --tracking-uri, or use --no-tracking")
    assert REACH_TIMEOUT <= elapsed < 30  # seconds, where MLflow alone waits 120 s per try, 8 tries
    assert not (tmp_path / "runs").exists()  # nothing was written, loaded or trained


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended early ({proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_server_stopped_mid_run_loses_no_result(tiny_model, tmp_path):
    port, store = free_port(), tmp_path / "server"
    store.mkdir()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
         "--artifacts-destination", str(store / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # own group: stopped as one
    run_dir = tmp_path / "runs" / "outage"
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), 180, "mlflow server start", server)
        run = subprocess.Popen(
            [sys.executable, "-m", "cl_nlp.cli", "run", "--model", tiny_model, "--output", str(tmp_path / "runs"),
             "--run-name", "outage", "--tracking-uri", f"http://127.0.0.1:{port}", "--experiment", "outage",
             *sets(*TINY3)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (run_dir / "checkpoints" / "stage-001").exists(), 300, "stage 1", run)
        os.killpg(server.pid, signal.SIGKILL)  # the outage: the server and its workers vanish mid-run
        server.wait()
        out, err = run.communicate(timeout=300)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    assert run.returncode == 3, err
    assert "Traceback" not in err
    assert "warning: MLflow logging failed" in err  # said when it happened...
    assert f"warning: the run finished and {run_dir} holds every result, but MLflow logging failed" in err  # ...and at the end
    assert "Live accuracy" in out
    results = json.loads((run_dir / "results.json").read_text())
    assert results["stages_done"] == 3
    assert all(v is not None for v in results["matrices"]["live"][2])
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "FINISHED" and status["tracking"]["error"]
    assert status["checkpoint"] is None and not (run_dir / "checkpoints").exists()  # finished: resume state dropped

    # What reached the server before it died is in its store: the run, and stage 1's metrics.
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    (logged,) = client.search_runs([client.get_experiment_by_name("outage").experiment_id])
    assert logged.info.run_id == status["tracking"]["run_id"]
    first = client.get_metric_history(logged.info.run_id, "acc/clinc1")
    assert first[0].step == 1 and first[0].value == results["matrices"]["live"][0][0]


def read_only(path: Path, undo: list) -> Path:
    """Make a folder unwritable, for root too (root ignores mode bits: the immutable attribute)."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        undo.append(lambda: path.chmod(0o755))
    elif subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode == 0:
        undo.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))
    else:
        pytest.skip("cannot make a folder read-only here")
    return path


@pytest.mark.parametrize("uri", ["sqlite:///{ro}/mlflow.db", "file://{ro}/mlruns"])
def test_an_unwritable_local_store_fails_within_seconds_before_anything_is_written(uri, tiny_model, tmp_path, capsys):
    undo: list = []
    store = tmp_path / "store"
    store.mkdir()
    try:
        uri = uri.format(ro=read_only(store, undo))
        started = time.monotonic()
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--tracking-uri", uri, *sets(*TINY3)])
        elapsed = time.monotonic() - started
    finally:
        for fn in reversed(undo):
            fn()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"folder '{store}' is not writable; pass another --tracking-uri" in err[0], err
    assert elapsed < 10  # MLflow alone retried a read-only sqlite store for ~122 s
    assert not (tmp_path / "runs").exists() and not list(store.iterdir())


class Recorder:
    """A stand-in MLflow client that notes the HTTP limits in force at each call, then fails."""

    def __init__(self):
        self.seen = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.seen.append((name, {k: os.environ.get(k) for k in HTTP_DEFAULTS}))
            raise ConnectionError("server gone")
        return call


def test_http_limits_hold_for_the_trackers_calls_only_and_the_users_settings_win(tmp_path, monkeypatch):
    for key in HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    tracker = make_tracker(True, f"sqlite:///{tmp_path / 'mlflow.db'}", "limits")
    tracker.start("r", {}, {})
    tracker.client = client = Recorder()
    tracker.log_metrics({"acc/t1": 0.5}, step=1)    # the first failure: full limits
    tracker.end("FINISHED")                          # the server may be back: one short try
    assert [name for name, _ in client.seen] == ["log_batch", "set_terminated"]
    assert client.seen[0][1]["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert client.seen[0][1]["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "10"
    assert client.seen[1][1]["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert client.seen[1][1]["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
    assert tracker.ended is False and tracker.error.startswith("log metrics: server gone")
    assert all(key not in os.environ for key in HTTP_DEFAULTS)  # nothing left behind for other code

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")
    tracker._paused_until = 0.0
    tracker.log_metrics({"acc/t1": 0.5}, step=2)
    assert client.seen[-1][1]["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"


@pytest.mark.slow
def test_a_frozen_server_costs_a_bounded_wait(tmp_path, monkeypatch):
    """A server that accepts connections and never answers, mid-run: one logging call waits at
    most ~21 s (1 retry, 10 s timeout), the end one 3 s try; MLflow's defaults waited minutes."""
    from mlflow.tracking import MlflowClient

    for key in HTTP_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    tracker = make_tracker(True, f"sqlite:///{tmp_path / 'mlflow.db'}", "frozen")
    tracker.start("r", {}, {})
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        tracker.client = MlflowClient(f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        tracker.log_metrics({"acc/t1": 0.5}, step=1)
        tracker.log_metrics({"acc/t1": 0.6}, step=2)  # paused after the failure: no wait at all
        tracker.end("FINISHED")
        elapsed = time.monotonic() - started
    assert tracker.error and tracker.ended is False
    assert 10 <= elapsed < 35, elapsed


def test_a_final_status_lost_in_an_outage_is_set_by_the_next_resume(tiny_model, tmp_path, tracking_uri, monkeypatch,
                                                                      capsys):
    from mlflow.tracking import MlflowClient

    def outage(self, *args, **kwargs):
        raise ConnectionError("server gone")
    monkeypatch.setattr(MlflowClient, "set_terminated", outage)
    run_dir = tmp_path / "runs" / "outage"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--run-name", "outage",
              "--tracking-uri", tracking_uri, "--experiment", "outage", *sets(*TINY3[:4], "train.epochs=1",
                                                                             "eval.probes=false")])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert f"its MLflow run is still marked RUNNING: `cl-nlp run --resume {run_dir}` sets its status" in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "FINISHED" and status["tracking"]["status_sent"] is False
    client = MlflowClient(tracking_uri)
    assert client.get_run(status["tracking"]["run_id"]).info.status == "RUNNING"

    monkeypatch.undo()  # the server is back
    main(["run", "--resume", str(run_dir)])
    assert client.get_run(status["tracking"]["run_id"]).info.status == "FINISHED"
    assert json.loads((run_dir / "status.json").read_text())["tracking"]["status_sent"] is True
