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
import time
from pathlib import Path
from typing import Any

from cl_nlp.errors import UserError, shown
from cl_nlp.tracking_http import (
    HTTP_AFTER_FAILURE,
    HTTP_DEFAULTS,
    RETRY_COOLDOWN,
    check_reachable,
    http_limits,
)
from cl_nlp.tracking_http import first_line as _first_line
from cl_nlp.tracking_store import check_store_writable

MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values
# Run-folder entries not uploaded: checkpoints are resume state (the model's weights, for MiniLM
# ~90 MB per run), not results; they stay in the run folder. ``.lock`` is the run's folder lock.
NOT_ARTIFACTS = {"checkpoints", ".lock"}
# MLflow 3's UI picks an experiment's view from this tag: without it, it opens the GenAI view
# (traces, judges, prompts). "custom_model_development" is the value its selector calls
# "Machine learning" (checked in the UI bundle of mlflow 3.17): the training-runs view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


class Tracker:
    """No-op tracker (also the interface). ``run_id`` is ``None`` when nothing is recorded."""

    run_id: str | None = None
    experiment_id: str | None = None
    error: str | None = None  # the first logging failure, once calls failed after their retries
    error_reported: bool = False  # whether the user was told about :attr:`error`
    seconds: float = 0.0  # wall time spent inside tracking calls, setting up the store included
    ended: bool | None = None  # whether :meth:`end` reached the store (None: nothing is recorded)

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        """Open a run and record its flattened config and tags."""

    def resume(self, run_id: str, stage: int) -> None:
        """Re-open run ``run_id`` (marked RUNNING again) to continue logging after task ``stage``."""

    def checkpoint_info(self) -> dict[str, Any]:
        """What a checkpoint records so that a resumed run logs into the same run."""
        return {"run_id": self.run_id}

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """Record numbers at ``step``; NaN values are skipped (MLflow charts cannot draw them)."""

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file (or every file of a folder)."""

    def log_table(self, columns: dict[str, list[Any]], artifact_file: str) -> None:
        """A table artifact MLflow's UI shows as a table (``MlflowClient.log_table``); logged once."""

    def log_datasets(self, datasets: list[Any]) -> None:
        """Each task's data as a dataset input (:class:`cl_nlp.dataset_inputs.TaskDataset` objects)."""

    def set_description(self, text: str) -> None:
        """The run's description (``mlflow.note.content``): the verdict."""

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        """Close the run as FINISHED or FAILED (with the reason recorded as a tag)."""

    def compare_url(self) -> str:
        """A link to the runs' chart view, where ``acc/<task>`` draws forgetting curves ("" without one)."""
        return ""


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
    (``sqlite:///mlflow.db`` in the working directory, artifacts under ``./mlruns``).

    The store is reached when the tracker is made (a :class:`UserError` if it cannot be), so a
    bad URI fails before training. During the run a call that still fails after MLflow's
    retries is recorded in :attr:`error` and logging pauses for ``RETRY_COOLDOWN`` seconds:
    training never stops for tracking.
    """

    def __init__(self, uri: str | None, experiment: str, parent_run_id: str | None = None):
        started = time.perf_counter()  # `import mlflow` and a new sqlite store are most of a run's tracking time
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri or mlflow.get_tracking_uri()
        self.experiment = experiment
        self.parent_run_id = parent_run_id
        self.failures = 0
        self._paused_until = 0.0
        self.ended = False  # whether the run's final status reached MLflow
        self.earlier_failure: str | None = None  # a resumed run's failure_reason, cleared when it finishes
        check_reachable(self.uri)
        check_store_writable(self.uri)  # a read-only sqlite file fails here, not after ~2 minutes of retries
        try:
            with http_limits(HTTP_DEFAULTS):
                self.client = MlflowClient(tracking_uri=self.uri)
                exp = self.client.get_experiment_by_name(self.experiment)
        except Exception as exc:  # any store error here is a bad URI or an unusable store
            raise UserError(f"cannot use MLflow tracking URI {shown(self.uri, 120)} ({_first_line(exc, 150)}); pass "
                            "another --tracking-uri, or use --no-tracking") from None
        self.experiment_id = exp.experiment_id if exp else None
        self.seconds = time.perf_counter() - started

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        started = time.perf_counter()
        try:
            with http_limits(HTTP_DEFAULTS):
                self._start(run_name, params, tags)
        except Exception as exc:
            raise UserError(f"cannot start an MLflow run at {shown(self.uri, 120)} ({_first_line(exc, 150)}); "
                            "use --no-tracking to run without MLflow") from None
        finally:
            self.seconds += time.perf_counter() - started

    def _tag_experiment_kind(self) -> None:
        """Open an existing experiment in the training view too, unless someone chose its kind."""
        try:
            tags = self.client.get_experiment(self.experiment_id).tags or {}
            if not tags.get(EXPERIMENT_KIND_TAG):
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        except Exception:  # e.g. no permission on a shared server's experiment: only the UI's first view is at stake
            pass

    def _start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        from mlflow.entities import Param

        if self.experiment_id is None:
            self.experiment_id = self.client.create_experiment(self.experiment,
                                                               tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        else:
            self._tag_experiment_kind()
        run_tags = {"mlflow.runName": run_name, **{k: str(v) for k, v in tags.items() if v is not None}}
        if self.parent_run_id:
            run_tags["mlflow.parentRunId"] = self.parent_run_id
        run = self.client.create_run(self.experiment_id, tags=run_tags, run_name=run_name)
        self.run_id = run.info.run_id
        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items()]
        for s in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[s : s + 100])

    def resume(self, run_id: str, stage: int) -> None:
        started = time.perf_counter()
        try:
            with http_limits(HTTP_DEFAULTS):
                run = self.client.get_run(run_id)
                self.client.update_run(run_id, status="RUNNING")
                self.client.set_tag(run_id, "cl_nlp.resumed_after_task", str(stage))
        except Exception as exc:
            raise UserError(f"cannot continue MLflow run {shown(run_id, 60)} at {shown(self.uri, 120)} "
                            f"({_first_line(exc, 150)}); pass the --tracking-uri the run was logged to, or use "
                            "--no-tracking") from None
        finally:
            self.seconds += time.perf_counter() - started
        self.run_id = run_id
        self.experiment_id = run.info.experiment_id
        self.earlier_failure = run.data.tags.get("failure_reason")

    def checkpoint_info(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "uri": self.uri, "experiment_id": self.experiment_id}

    def _call(self, what: str, fn, *args, **kwargs) -> bool:
        """Run one logging call; a failure is recorded, never raised (results live in the run folder).
        Returns whether the call was made and succeeded."""
        if self.run_id is None or time.monotonic() < self._paused_until:
            return False
        started = time.perf_counter()
        try:
            with http_limits(HTTP_AFTER_FAILURE if self.failures else HTTP_DEFAULTS):
                fn(*args, **kwargs)
            return True
        except Exception as exc:
            self.failures += 1
            self.error = self.error or f"{what}: {_first_line(exc)}"
            self._paused_until = time.monotonic() + RETRY_COOLDOWN
            return False
        finally:
            self.seconds += time.perf_counter() - started

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in finite(values).items()]
        for s in range(0, len(items), 1000):
            self._call("log metrics", self.client.log_batch, self.run_id, metrics=items[s : s + 1000])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if not path.is_dir():
            self._call("upload artifacts", self.client.log_artifact, self.run_id, str(path), artifact_path)
            return
        for entry in sorted(path.iterdir()):
            if entry.name in NOT_ARTIFACTS or entry.name.endswith(".tmp"):
                continue
            if entry.is_dir():
                where = f"{artifact_path}/{entry.name}" if artifact_path else entry.name
                self._call("upload artifacts", self.client.log_artifacts, self.run_id, str(entry), where)
            else:
                self._call("upload artifacts", self.client.log_artifact, self.run_id, str(entry), artifact_path)

    def log_table(self, columns: dict[str, list[Any]], artifact_file: str) -> None:
        # log_table appends rows to an existing table: a run resumed after it finished logs nothing new.
        def log() -> None:
            if artifact_file not in {a.path for a in self.client.list_artifacts(self.run_id)}:
                self.client.log_table(self.run_id, data=columns, artifact_file=artifact_file)

        self._call("log table", log)

    def log_datasets(self, datasets: list[Any]) -> None:
        from cl_nlp.dataset_inputs import mlflow_dataset_inputs

        self._call("log dataset inputs", lambda: self.client.log_inputs(self.run_id, mlflow_dataset_inputs(datasets)))

    def set_description(self, text: str) -> None:
        self._call("set description", self.client.set_tag, self.run_id, "mlflow.note.content", text)

    def end(self, status: str = "FINISHED", reason: str | None = None) -> None:
        self._paused_until = 0.0  # one more try: the server may be back
        # The status first: if the server is still away, one short try and no more waiting.
        self.ended = self._call("end run", self.client.set_terminated, self.run_id, status=status)
        if self.error:
            self._call("tag", self.client.set_tag, self.run_id, "cl_nlp.tracking_error",
                       f"{self.failures} logging call(s) failed, first: {self.error}; the run folder has every result")
        if reason:
            self._call("tag", self.client.set_tag, self.run_id, "failure_reason", reason[:5000])
        elif status == "FINISHED" and self.earlier_failure:  # a resumed run finished: its old failure is history
            if self._call("tag", self.client.set_tag, self.run_id, "cl_nlp.earlier_failure", self.earlier_failure[:5000]):
                self._call("tag", self.client.delete_tag, self.run_id, "failure_reason")

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
