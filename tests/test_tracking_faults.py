"""Tracking outages: a server that does not answer fails the run within seconds, before training;
a real `mlflow server` stopped mid-run costs no result (exit status 3, the outage reported)."""

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
from cl_nlp.tracking_http import REACH_TIMEOUT

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
