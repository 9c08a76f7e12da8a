"""``cl-nlp compare``: read runs from any MLflow tracking URI and compare them.

Runs are found by id, as the children of a parent run (a sweep), or in an experiment with an
optional MLflow filter — from a local sqlite store or a remote ``mlflow server`` alike. Each
run's accuracy matrices come from its ``results.json`` artifact or, when a run has none, are
rebuilt from its ``acc/<task>`` metric histories (step = stage), the same keys MLflow's own
chart view draws. Grouping, checks and the files written are :mod:`cl_nlp.comparison.comparison`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

from cl_nlp.errors import UserError
from cl_nlp.comparison.comparison import (ComparedRun, Comparison, echo_comparison, log_comparison, plural,
                                          write_comparison)
from cl_nlp.evaluation.metric_keys import METRIC_PREFIX
from cl_nlp.evaluation.results import Results

# Metric-key prefix of each matrix: what rebuilds a matrix from metric histories.
MATRIX_PREFIX = {name: METRIC_PREFIX[name] for name in ("live", "task_aware", "probe")}


def find_runs(client: Any, run_ids: tuple[str, ...] = (), parent: str | None = None,
              experiment: str | None = None, filter_string: str | None = None) -> list[Any]:
    """MLflow ``Run`` objects: the given ids, the children of ``parent``, or an experiment's runs."""
    from mlflow.exceptions import MlflowException

    if sum(bool(x) for x in (run_ids, parent, experiment)) != 1:
        raise UserError("give run ids, or --parent RUN_ID, or --experiment NAME (exactly one of them)")
    try:
        if run_ids:
            if filter_string:
                raise UserError("--filter works with --parent or --experiment, not with run ids")
            return [client.get_run(r) for r in run_ids]
        if parent:
            exp_ids = [client.get_run(parent).info.experiment_id]
            where = f"tags.mlflow.parentRunId = '{parent}'"
        else:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                names = ", ".join(e.name for e in client.search_experiments()) or "none"
                raise UserError(f"no MLflow experiment named {experiment!r} at this tracking URI (experiments: {names})")
            exp_ids, where = [exp.experiment_id], ""
        if filter_string:
            where = f"{where} and {filter_string}" if where else filter_string
        runs, token = [], None
        while True:
            page = client.search_runs(exp_ids, filter_string=where, max_results=1000, page_token=token,
                                      order_by=["attributes.start_time ASC"])
            runs += list(page)
            token = page.token
            if not token:
                return runs
    except MlflowException as exc:
        first = (str(exc.message or exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"MLflow: {first if len(first) <= 200 else first[:100] + '...' + first[-97:]}") from None


def _download_results(client: Any, run_id: str) -> Results | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, "results.json", tmp)
        except Exception:  # no such artifact, or an artifact store we cannot reach: fall back
            return None
        return Results.from_dict(json.loads(Path(local).read_text(encoding="utf-8")))


def rebuild_results(client: Any, run: Any) -> Results | None:
    """Matrices from ``<prefix>/<task>`` metric histories; task order = the stage each first appears."""
    keys = run.data.metrics
    first_seen: dict[str, int] = {}
    histories: dict[str, dict[str, list]] = {}
    for name, prefix in MATRIX_PREFIX.items():
        for key in keys:
            if key.startswith(prefix + "/"):
                history = client.get_metric_history(run.info.run_id, key)
                task = key[len(prefix) + 1:]
                histories.setdefault(name, {})[task] = history
                first_seen[task] = min([first_seen.get(task, 10**9), *[m.step for m in history]])
    if not first_seen:
        return None
    tasks = sorted(first_seen, key=lambda t: first_seen[t])
    results = Results(tasks, run.data.tags.get("scenario", "unknown"))
    for name, per_task in histories.items():
        for task, history in per_task.items():
            for m in history:
                if 1 <= m.step <= len(tasks):
                    results.record(name, m.step, tasks.index(task), m.value)
                    results.stages_done = max(results.stages_done, m.step)
    return results


def load_run(client: Any, run: Any) -> ComparedRun:
    """A :class:`ComparedRun` from an MLflow ``Run`` (downloads its results.json when present)."""
    tags = run.data.tags
    # Runs that are no strategy run (a sweep's parent, a logged comparison) need no matrices.
    results = (_download_results(client, run.info.run_id) or rebuild_results(client, run)) if "strategy" in tags else None
    return ComparedRun(run.info.run_id, tags.get("mlflow.runName", run.info.run_id), tags.get("strategy"),
                       tags.get("stream"), tags.get("seed"), run.info.status, dict(run.data.metrics),
                       dict(run.data.params), results, tags.get("failure_reason") or tags.get("cl_nlp.kind"))


def compare_from_mlflow(uri: str | None, run_ids: tuple[str, ...] = (), parent: str | None = None,
                        experiment: str | None = None, filter_string: str | None = None,
                        output: str | Path = "comparison", matrix: str = "live", log_back: bool = False,
                        log_to: str | None = None, echo: Callable[[str], None] = print) -> Comparison:
    """``cl-nlp compare``: find the runs, write the comparison to ``output``, optionally log it back.

    ``log_back`` logs into the ``parent`` run (under ``comparison/``) or, without one, into a new
    run of the compared runs' experiment; ``log_to`` names an existing run instead.
    """
    import os

    import mlflow
    from mlflow.tracking import MlflowClient

    from cl_nlp import tracking_http

    if log_back and log_to:
        raise UserError("give --log or --log-to RUN_ID, not both")
    for key, value in tracking_http.HTTP_DEFAULTS.items():  # fail in seconds, not minutes
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per results.json otherwise
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    found = find_runs(client, tuple(run_ids), parent, experiment, filter_string)
    echo(f"comparing {plural(len(found), 'run')} from {uri}")
    runs = [load_run(client, r) for r in found]
    title = f"Comparison of {'the children of run ' + parent if parent else experiment or 'selected runs'}"
    comparison = write_comparison(runs, output, matrix, title)
    echo_comparison(comparison, echo)
    target, artifact_path = log_to, "comparison"
    if log_back and parent:
        target = parent
    elif log_back:
        from datetime import datetime

        compared = [c.run_id for c in runs if c.label]  # the runs write_comparison kept
        experiment_id = next(r.info.experiment_id for r in found if r.info.run_id == compared[0])
        created = client.create_run(experiment_id, run_name=f"comparison-{datetime.now():%Y%m%d-%H%M%S}",
                                    tags={"cl_nlp.kind": "comparison", "compared_runs": ",".join(compared)[:5000]})
        target, artifact_path = created.info.run_id, None
    if target:
        log_comparison(client, target, comparison, artifact_path)
        if log_back and not parent:
            client.set_terminated(target, "FINISHED")
        echo(f"logged to MLflow run {target}" + (f" under {artifact_path}/" if artifact_path else ""))
    return comparison
