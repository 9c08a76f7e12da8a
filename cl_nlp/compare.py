"""Compare runs: find them in MLflow, group them by strategy, write curves, heatmaps and a table.

``cl-nlp compare`` and the end of ``cl-nlp sweep`` share this module. A run enters the
comparison as a :class:`ComparedRun` — its tags, params, final metrics and accuracy matrices —
whether it comes from any MLflow tracking URI (a local sqlite file or a remote
``mlflow server``) or straight from a sweep that just finished. Matrices come from the run's
``results.json`` artifact, or, when a run has none, are rebuilt from its ``acc/<task>`` metric
histories (step = stage), the same keys MLflow's own chart view draws.

Runs are grouped by their ``strategy`` tag; runs of one strategy whose params differ (other
than seed and output paths) are split into groups labelled with the differing params, e.g.
``ewc (strategy.lambda=100)``, so a hyper-parameter sweep is not averaged into one line.
Runs of different streams (or different task lists) are refused: their matrices do not align.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cl_nlp.errors import UserError
from cl_nlp.evaluation.compare_plots import plot_final_matrices, plot_forgetting_curves
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.summary_table import (SummaryRow, format_markdown, summarize, summary_metrics,
                                             write_csv)

# Metric-key prefix of each matrix: what rebuilds a matrix from metric histories.
MATRIX_PREFIX = {"live": "acc", "task_aware": "task_aware_acc", "probe": "probe_acc"}
# Params that differ between seeds of one configuration without making it another one.
_NOT_A_SETTING = ("seed", "run_name", "output")


@dataclass
class ComparedRun:
    """One run as the comparison sees it."""

    run_id: str | None
    name: str
    strategy: str | None
    stream: str | None
    seed: str | None
    status: str  # FINISHED, FAILED, RUNNING, KILLED
    final: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    results: Results | None = None
    reason: str | None = None
    label: str = ""  # the group it is drawn in; set by group_runs


# ---------------------------------------------------------------- reading runs from MLflow

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
        raise UserError(f"MLflow: {exc.message.splitlines()[0] if exc.message else exc}") from None


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
    results = _download_results(client, run.info.run_id) or rebuild_results(client, run)
    return ComparedRun(run.info.run_id, tags.get("mlflow.runName", run.info.run_id), tags.get("strategy"),
                       tags.get("stream"), tags.get("seed"), run.info.status, dict(run.data.metrics),
                       dict(run.data.params), results, tags.get("failure_reason"))


# ---------------------------------------------------------------- grouping and checks

def select_runs(runs: list[ComparedRun]) -> tuple[list[ComparedRun], list[str]]:
    """Finished runs of one stream; the others come back as notes saying why they were left out."""
    kept, notes = [], []
    for r in runs:
        if r.strategy is None:
            notes.append(f"{r.name} ({r.run_id}): no strategy tag (a sweep's parent run?), left out")
        elif r.status != "FINISHED":
            why = f": {r.reason}" if r.reason else ""
            notes.append(f"{r.name} ({r.run_id}): {r.strategy} seed {r.seed} is {r.status}{why}, left out")
        elif r.results is None or r.results.stages_done == 0:
            notes.append(f"{r.name} ({r.run_id}): no accuracy matrix (no results.json, no acc/<task> metrics), left out")
        else:
            kept.append(r)
    if not kept:
        raise UserError("no finished cl-nlp run to compare" + (": " + "; ".join(notes) if notes else ""))
    streams: dict[str, int] = {}
    for r in kept:
        streams[str(r.stream)] = streams.get(str(r.stream), 0) + 1
    if len(streams) > 1:
        counts = ", ".join(f"{s}: {n} runs" for s, n in streams.items())
        raise UserError(f"the runs come from different streams ({counts}); compare one stream at a time, "
                        f"e.g. --filter \"tags.stream = '{next(iter(streams))}'\"")
    tasks = {tuple(r.results.task_names) for r in kept}
    if len(tasks) > 1:
        raise UserError(f"the runs of stream {next(iter(streams))!r} have different task lists ({len(tasks)} "
                        "variants, e.g. different stream options); filter them to one stream configuration")
    return kept, notes


def group_runs(runs: list[ComparedRun]) -> dict[str, list[ComparedRun]]:
    """Runs by strategy (in first-seen order), split where a strategy's runs differ in a setting."""
    by_strategy: dict[str, list[ComparedRun]] = {}
    for r in runs:
        by_strategy.setdefault(str(r.strategy), []).append(r)
    groups: dict[str, list[ComparedRun]] = {}
    for strategy, members in by_strategy.items():
        keys = sorted({k for r in members for k in r.params if k not in _NOT_A_SETTING and not k.startswith("tracking.")})
        differing = [k for k in keys if len({r.params.get(k) for r in members}) > 1]
        for r in members:
            r.label = strategy + (" (" + ", ".join(f"{k}={r.params.get(k)}" for k in differing) + ")" if differing else "")
            groups.setdefault(r.label, []).append(r)
    return groups


# ---------------------------------------------------------------- writing the comparison

@dataclass
class Comparison:
    """What :func:`write_comparison` produced."""

    folder: Path
    rows: list[SummaryRow]
    table: str
    files: list[Path]
    notes: list[str]


def write_comparison(runs: list[ComparedRun], folder: str | Path, matrix: str = "live",
                     title: str = "Comparison") -> Comparison:
    """Write ``summary.md``, ``summary.csv``, ``forgetting_curves.png``, ``final_matrices.png`` and
    ``report.md`` (all of them on one page) to ``folder``; return the table and the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kept, notes = select_runs(runs)
    groups = group_runs(kept)
    failed: dict[str, int] = {}
    for r in runs:
        if r.strategy is not None and r.status != "FINISHED":
            failed[r.strategy] = failed.get(r.strategy, 0) + 1
    rows = summarize({label: [r.final for r in members] for label, members in groups.items()}, failed)
    table = format_markdown(rows)
    tasks = kept[0].results.task_names
    missing = [r.name for r in kept if matrix not in r.results.matrices]
    if missing:
        have = sorted(set.intersection(*(set(r.results.matrices) for r in kept)))
        raise UserError(f"matrix {matrix!r} is missing in {len(missing)} run(s) (e.g. {missing[0]}); "
                        f"matrices every run has: {', '.join(have) or 'none'}")
    matrices = {label: [r.results.matrix(matrix) for r in members] for label, members in groups.items()}
    reading = "live accuracy" if matrix == "live" else f"{matrix} accuracy"
    files = [plot_forgetting_curves(matrices, tasks, folder / "forgetting_curves.png", reading),
             plot_final_matrices(matrices, tasks, folder / "final_matrices.png", reading)]
    (folder / "summary.md").write_text(table + "\n", encoding="utf-8")
    write_csv(rows, folder / "summary.csv")
    (folder / "report.md").write_text(_report(title, kept, groups, table, notes, reading), encoding="utf-8")
    files += [folder / "summary.md", folder / "summary.csv", folder / "report.md"]
    return Comparison(folder, rows, table, files, notes)


def _report(title: str, kept: list[ComparedRun], groups: dict[str, list[ComparedRun]], table: str,
            notes: list[str], reading: str) -> str:
    lines = [f"# {title}", "", f"Stream `{kept[0].stream}`, {len(kept)} finished runs in {len(groups)} groups. "
             "Cells: mean ± sample std (ddof=1) over seeds of each run's `final/*` metrics.", "", table, "",
             f"## Forgetting curves ({reading}; mean over seeds, band ± 1 std)", "",
             "![forgetting curves](forgetting_curves.png)", "",
             "## Final accuracy matrices (mean over seeds; rows: after task i, columns: task j)", "",
             "![final matrices](final_matrices.png)", "", "## Runs", "", "| group | seed | run | ACC |", "|---|---|---|---|"]
    for label, members in groups.items():
        for r in members:
            acc = r.final.get("final/acc")
            lines.append(f"| {label} | {r.seed} | {r.name} (`{r.run_id}`) | {'n/a' if acc is None else f'{acc:.3f}'} |")
    if notes:
        lines += ["", "## Left out", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def metric_safe(text: str) -> str:
    """MLflow metric keys allow letters, digits, ``_ - . / `` and spaces: replace anything else."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in text)


def log_comparison(tracker_or_client: Any, run_id: str, comparison: Comparison, artifact_path: str | None = None,
                   step: int = 0) -> None:
    """Upload the comparison's files to ``run_id`` and log ``summary/<group>/<metric>_mean|_std``."""
    import time

    from mlflow.entities import Metric

    client = getattr(tracker_or_client, "client", tracker_or_client)
    for path in comparison.files:
        client.log_artifact(run_id, str(path), artifact_path)
    now = int(time.time() * 1000)
    metrics = [Metric(metric_safe(k), float(v), now, step) for k, v in summary_metrics(comparison.rows).items()]
    for s in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[s:s + 1000])


def echo_comparison(comparison: Comparison, echo: Callable[[str], None]) -> None:
    """Print the table, what was left out, and where the files are."""
    echo(comparison.table)
    for note in comparison.notes:
        echo(f"note: {note}")
    echo(f"comparison written to {comparison.folder}/ (report.md, summary.csv, forgetting_curves.png, final_matrices.png)")


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

    from cl_nlp import tracking

    if log_back and log_to:
        raise UserError("give --log or --log-to RUN_ID, not both")
    for key, value in getattr(tracking, "HTTP_DEFAULTS", {}).items():  # fail in seconds, not minutes
        os.environ.setdefault(key, value)
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    found = find_runs(client, tuple(run_ids), parent, experiment, filter_string)
    echo(f"comparing {len(found)} runs from {uri}")
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
