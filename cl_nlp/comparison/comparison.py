"""Comparing runs: group them by strategy, check they align, write curves, heatmaps and a table.

A run enters as a :class:`ComparedRun` — tags, params, final metrics, accuracy matrices —
whether it was read from MLflow (:mod:`cl_nlp.comparison.runs`) or comes straight from a sweep that
just finished (:mod:`cl_nlp.sweep`). Runs are grouped by their ``strategy`` tag; runs of one
strategy whose params differ (other than seed and output paths) are split into groups labelled
with the differing params, e.g. ``ewc (strategy.lambda=100)``, so a hyper-parameter sweep is
not averaged into one line. Runs of different streams (or task lists) are refused: their
matrices do not align. Unfinished runs are left out with a note saying why.

Besides the summary table of logged final metrics, each group gets the retention verdict across
its runs (:mod:`cl_nlp.evaluation.across_runs`): the verdict's quantities re-derived from each
run's results, with a t-interval across runs, and the forgetting category and knowledge source
stated only where the runs agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cl_nlp.errors import UserError
from cl_nlp.comparison.plots import plot_final_matrices, plot_forgetting_curves
from cl_nlp.comparison.summary_table import SummaryRow, format_markdown, summarize, summary_metrics, write_csv
from cl_nlp.evaluation import across_runs
from cl_nlp.evaluation.metrics import intransigence
from cl_nlp.evaluation.results import Results

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


def select_runs(runs: list[ComparedRun]) -> tuple[list[ComparedRun], list[str]]:
    """Finished runs of one stream; the others come back as notes saying why they were left out."""
    kept, notes = [], []
    for r in runs:
        if r.strategy is None:
            kind = f"a {r.reason} run" if r.reason else "not a cl-nlp run"  # load_run keeps cl_nlp.kind here
            notes.append(f"{r.name} ({r.run_id}): no strategy tag ({kind}), left out")
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
        counts = ", ".join(f"{s}: {plural(n, 'run')}" for s, n in streams.items())
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


def finals_with_intransigence(groups: dict[str, list[ComparedRun]]) -> dict[str, list[dict[str, float]]]:
    """Each group's final metrics, plus ``final/intransigence`` where joint runs give the ceiling.

    Intransigence (Chaudhry et al. 2018) of a run: the mean over tasks k of ``a*_k − R[k][k]``, with
    ``a*_k`` the joint runs' live accuracy on task k right after training on tasks ≤ k (averaged over
    their seeds) and ``R[k][k]`` the run's own. Positive: the run learns new tasks worse than joint
    training would. Joint runs get theirs too (about zero: their spread over seeds).
    """
    finals = {label: [dict(r.final) for r in members] for label, members in groups.items()}
    joint = [r for members in groups.values() for r in members if r.strategy == "joint"]
    if not joint:
        return finals
    ceiling = np.nanmean([np.diag(r.results.matrix("live")) for r in joint], axis=0)
    for label, members in groups.items():
        for final, r in zip(finals[label], members):
            final["final/intransigence"] = float(np.nanmean(intransigence(r.results.matrix("live"), ceiling)))
    return finals


@dataclass
class Comparison:
    """What :func:`write_comparison` produced."""

    folder: Path
    rows: list[SummaryRow]
    table: str
    files: list[Path]
    notes: list[str]
    verdicts: list[across_runs.GroupVerdict] = field(default_factory=list)


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
    rows = summarize(finals_with_intransigence(groups), failed)
    table = format_markdown(rows)
    tasks = kept[0].results.task_names
    missing = [r.name for r in kept if matrix not in r.results.matrices]
    if missing:
        have = sorted(set.intersection(*(set(r.results.matrices) for r in kept)))
        raise UserError(f"matrix {matrix!r} is missing in {len(missing)} run(s) (e.g. {missing[0]}); "
                        f"matrices every run has: {', '.join(have) or 'none'}")
    matrices = {label: [r.results.matrix(matrix) for r in members] for label, members in groups.items()}
    reading = "live accuracy" if matrix == "live" else f"{matrix.replace('_', '-')} accuracy"
    files = [plot_forgetting_curves(matrices, tasks, folder / "forgetting_curves.png", reading),
             plot_final_matrices(matrices, tasks, folder / "final_matrices.png", reading)]
    verdicts = across_runs.group_verdicts({label: [r.results for r in members] for label, members in groups.items()})
    (folder / "summary.md").write_text(table + "\n", encoding="utf-8")
    write_csv(rows, folder / "summary.csv")
    (folder / "report.md").write_text(_report(title, kept, groups, table, notes, reading, verdicts), encoding="utf-8")
    files += [folder / "summary.md", folder / "summary.csv", folder / "report.md"]
    return Comparison(folder, rows, table, files, notes, verdicts)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs`` (``many`` where adding an s is wrong: ``2 strategies``)."""
    return f"{n} {noun if n == 1 else many or noun + 's'}"


def _report(title: str, kept: list[ComparedRun], groups: dict[str, list[ComparedRun]], table: str,
            notes: list[str], reading: str, verdicts: list[across_runs.GroupVerdict]) -> str:
    counts = f"{plural(len(kept), 'finished run')} in {plural(len(groups), 'group')}"
    lines = [f"# {title}", "", f"Stream `{kept[0].stream}`, {counts}. "
             "Cells: mean ± sample std (ddof=1) over seeds of each run's `final/*` metrics.", "", table, "",
             "## Retention verdict across runs", "", across_runs.markdown(verdicts), "",
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


def log_comparison(client: Any, run_id: str, comparison: Comparison, artifact_path: str | None = None,
                   step: int = 0) -> None:
    """Upload the comparison's files to ``run_id`` and log ``summary/<group>/<metric>_mean|_std``.

    ``client`` is an ``MlflowClient`` (any run of any experiment can receive a comparison).
    """
    import time

    from mlflow.entities import Metric

    for path in comparison.files:
        client.log_artifact(run_id, str(path), artifact_path)
    now = int(time.time() * 1000)
    values = {**summary_metrics(comparison.rows), **across_runs.summary_metrics(comparison.verdicts)}
    metrics = [Metric(metric_safe(k), float(v), now, step) for k, v in values.items()]
    for s in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[s:s + 1000])


def echo_comparison(comparison: Comparison, echo: Callable[[str], None]) -> None:
    """Print the table, what was left out, and where the files are."""
    echo(comparison.table)
    for g in comparison.verdicts:
        echo(f"{g.label}: forgetting — {g.answer(g.categories, g.category)}; knowledge source — "
             f"{g.answer(g.sources, g.source)}")
    for note in comparison.notes:
        echo(f"note: {note}")
    echo(f"comparison written to {comparison.folder}/ (report.md, summary.csv, forgetting_curves.png, final_matrices.png)")
