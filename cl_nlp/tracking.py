"""Experiment tracking behind a small interface: MLflow for real runs, a no-op for tests.

Strategies and evaluators never import MLflow; the trainer hands their numbers to a
:class:`Tracker`. The MLflow tracker uses ``MlflowClient`` with an explicit run id instead of
MLflow's global "active run", so several runs (a sweep's children) never share hidden state.
Metric keys follow one convention, so MLflow's own chart view draws forgetting curves across
runs: ``acc/<task>`` with ``step`` = number of tasks learned.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path
from typing import Any

from cl_nlp.errors import UserError

MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values


class Tracker:
    """No-op tracker (also the interface). ``run_id`` is ``None`` when nothing is recorded."""

    run_id: str | None = None
    experiment_id: str | None = None

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        """Open a run and record its flattened config and tags."""

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """Record numbers at ``step``; NaN values are skipped (MLflow charts cannot draw them)."""

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file (or every file of a folder)."""

    def set_description(self, text: str) -> None:
        """The run's description (``mlflow.note.content``): the verdict."""

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Close the run as FINISHED or FAILED (with the reason recorded as a tag)."""

    def run_url(self) -> str | None:
        return None


def finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and not math.isnan(float(v)) and not math.isinf(float(v))}


def git_commit() -> str | None:
    """The commit of the working directory's repository, when there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class MlflowTracker(Tracker):
    """Logs one run to MLflow. ``uri=None`` means ``$MLFLOW_TRACKING_URI`` or MLflow's default
    (``sqlite:///mlflow.db`` in the working directory, artifacts under ``./mlruns``)."""

    def __init__(self, uri: str | None, experiment: str, parent_run_id: str | None = None):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri or mlflow.get_tracking_uri()
        self.experiment = experiment
        self.parent_run_id = parent_run_id
        self.client = MlflowClient(tracking_uri=self.uri)

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        from mlflow.entities import Param

        exp = self.client.get_experiment_by_name(self.experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
        run_tags = {"mlflow.runName": run_name, **{k: str(v) for k, v in tags.items() if v is not None}}
        if self.parent_run_id:
            run_tags["mlflow.parentRunId"] = self.parent_run_id
        run = self.client.create_run(self.experiment_id, tags=run_tags, run_name=run_name)
        self.run_id = run.info.run_id
        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for s in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[s : s + 100])

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in finite(values).items()]
        for s in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[s : s + 1000])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_description(self, text: str) -> None:
        self.client.set_tag(self.run_id, "mlflow.note.content", text)

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        if self.run_id is None:
            return
        if reason:
            self.client.set_tag(self.run_id, "failure_reason", reason[:5000])
        self.client.set_terminated(self.run_id, status=status)

    def run_url(self) -> str | None:
        if self.uri.startswith(("http://", "https://")):
            return f"{self.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        return None

    def compare_url(self, ui: str = "http://127.0.0.1:5000") -> str:
        """Deep link to MLflow's chart view, where ``acc/<task>`` draws one forgetting curve per task."""
        base = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else ui
        return f"{base}/#/experiments/{self.experiment_id}/runs?compareRunsMode=CHART"


def make_tracker(enabled: bool, uri: str | None, experiment: str) -> Tracker:
    """An :class:`MlflowTracker`, or the no-op :class:`Tracker` when tracking is disabled."""
    if not enabled:
        return Tracker()
    if uri is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    try:
        return MlflowTracker(uri, experiment)
    except ImportError:
        raise UserError("mlflow is not installed; install it or set tracking.enabled=false") from None
