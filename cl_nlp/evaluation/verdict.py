"""The run's verdict in plain words, its markdown report, and the files written at the end of a run.

Every number in the verdict is read from the run's matrices (see
:mod:`cl_nlp.evaluation.retention` for the definitions and thresholds); the wording only
chooses between cases: was anything forgotten, how much of it a probe recovers, how far the
representation drifted, and whether the knowledge came from pretraining or from fine-tuning.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cl_nlp.evaluation.class_report import write_class_report_csv
from cl_nlp.evaluation.plots import plot_layer_probes, plot_matrices, plot_retention_curves
from cl_nlp.evaluation.report import format_matrix, format_summary
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import (LEARNED_WELL, MIN_DROP, MIN_GAIN, probe_seconds, retention_summary,
                                         task_table)


def _pts(x: float) -> str:
    return f"{x * 100:.0f}"


def _ok(*values: float) -> bool:
    return all(v is not None and not math.isnan(v) for v in values)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _learning(rows: list[dict]) -> list[str]:
    after = [r["live_after_learning"] for r in rows]
    out = [f"Live accuracy right after learning each task: {min(after):.2f}-{max(after):.2f} "
           f"(mean {np.mean(after):.2f})."]
    poor = [r for r in rows if not r["learned_well"]]
    if poor:
        were = "was" if len(poor) == 1 else "were"
        values = ", ".join(f"{r['live_after_learning']:.2f}" for r in poor)
        out.append(f"Warning: {_names([r['task'] for r in poor])} {were} not learned well (live accuracy right after "
                   f"learning {values} < {LEARNED_WELL:.2f}): "
                   "there was little to forget, so forgetting measured there means little.")
    return out


def _forgetting(summary: dict, has_probe: bool) -> list[str]:
    drop, share, recovered = summary["live_drop"], summary["recoverable_share"], summary["recovered"]
    if not _ok(drop):
        return []
    if drop < MIN_DROP:
        return [f"Live accuracy on earlier tasks barely fell ({drop * 100:.1f} points on average below its best; "
                f"final live ACC {summary['live_acc']:.2f}): there was little forgetting to explain."]
    text = (f"Live accuracy on earlier tasks fell {_pts(drop)} points on average below its best "
            f"(final live ACC {summary['live_acc']:.2f})")
    if not has_probe:
        return [text + "; probes were off (eval.probes=false), so the run cannot tell a lost representation "
                "from a drifted readout."]
    if not _ok(share):
        return [text + "."]
    text += f"; a linear probe on the frozen encoder recovers {_pts(recovered)} of them ({share:.0%})"
    if share >= 2 / 3:
        text += ": most of the forgetting is in the readout (the classifier), not the representation."
    elif share >= 1 / 3:
        text += ": the forgetting is split between the readout and the representation itself."
    else:
        text += ": most of the forgetting is in the representation itself, not only in the readout."
    out = [text]
    if _ok(summary["probe_bwt"]):
        out.append(f"Probe BWT {summary['probe_bwt'] * 100:+.1f} points against live BWT "
                   f"{summary['live_bwt'] * 100:+.1f}.")
    return out


def _drift(results: Results, summary: dict) -> list[str]:
    if not _ok(summary["cka"]):
        return []
    text = (f"Representation drift: linear CKA between each earlier task's test features right after learning it "
            f"and at the end averages {summary['cka']:.2f} (1 = unchanged)")
    cp = results.matrices.get("cka_pretrained")
    if cp is not None:
        s = results.stages_done
        final = cp[s - 1, : s - 1]
        if np.isfinite(final).any():
            text += f", and {np.nanmean(final):.2f} against the untouched pretrained encoder"
    return [text + "."]


def _source(rows: list[dict], summary: dict) -> list[str]:
    p0 = [r["pretrained_probe"] for r in rows]
    if not _ok(*p0) or not _ok(*(r["probe_after_learning"] for r in rows)):
        return []
    final = np.mean([r["final_probe"] for r in rows])
    base = (f"the untouched pretrained encoder's probe already scored {np.mean(p0):.2f} on average "
            f"({min(p0):.2f}-{max(p0):.2f} per task), against {summary['probe_after_learning']:.2f} right after "
            f"fine-tuning on each task and {final:.2f} at the end")
    gained = [r for r in rows if r["task"] in summary["gained_tasks"]]
    if not gained:
        return [f"Knowledge source: {base}; no task gained {MIN_GAIN * 100:.0f} or more points of probe accuracy "
                "from fine-tuning, so what the probes find came from pretraining, not from learning the tasks."]
    gain = np.mean([r["representation_gain"] for r in gained])
    survive = summary["surviving_share"]
    if not _ok(survive):
        kept = ""
    elif survive <= 0:
        kept = "; none of that gain survives to the end on the earlier tasks"
    else:
        kept = f"; {survive:.0%} of that gain survives to the end on the earlier tasks"
    if len(gained) == len(rows):
        return [f"Knowledge source: {base}; fine-tuning added {_pts(gain)} points of probe accuracy on average"
                f"{kept}, so the knowledge comes from fine-tuning on top of pretraining."]
    others = [r["task"] for r in rows if r not in gained]
    return [f"Knowledge source: {base}; fine-tuning added {_pts(gain)} points on average to "
            f"{_names([r['task'] for r in gained])}{kept}, while on {_names(others)} the pretrained encoder "
            "already knew as much: that knowledge came from pretraining."]


def verdict(results: Results) -> str:
    """The plain-words verdict of a run (at least one stage done), numbers from its matrices."""
    s = results.stages_done
    if s == 0:
        return "No task was learned: nothing to judge."
    summary = retention_summary(results, s)
    summary["live_bwt"] = results.summary("live", s)["bwt"]
    rows = task_table(results, s)
    has_probe = "probe" in results.matrices
    parts = _learning(rows)
    if s == 1:
        parts.append("Only one task was learned: nothing could be forgotten yet.")
    else:
        parts += _forgetting(summary, has_probe) + _drift(results, summary)
    if has_probe:
        parts += _source(rows, summary)
    return " ".join(parts)


_COLUMNS = (("task", "task"), ("pretrained_probe", "pretrained probe P0"), ("probe_after_learning", "probe after learning P_jj"),
            ("final_probe", "final probe P_Tj"), ("live_after_learning", "live after learning R_jj"),
            ("final_live", "final live R_Tj"), ("representation_gain", "gain P_jj-P0"),
            ("surviving_share", "surviving share"), ("live_retention", "live retention"),
            ("probe_retention", "probe retention"), ("live_drop", "live drop"),
            ("recoverable_share", "recoverable share"), ("cka", "CKA"))


def task_table_markdown(results: Results) -> str:
    """The per-task side-by-side table as markdown (``-`` = not defined or not measured)."""
    rows = task_table(results)
    lines = ["| " + " | ".join(label for _, label in _COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for r in rows:
        cells = [r["task"]] + ["-" if not _ok(r[k]) else f"{r[k]:.3f}" for k, _ in _COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def closing_note(results: Results, verdict_text: str) -> str:
    """What a run prints at its end after the live matrix: probe and drift matrices, and the verdict."""
    parts = []
    if "probe" in results.matrices:
        parts.append("Probe accuracy (linear probe on the frozen encoder; 'untrained' row = pretrained encoder)\n"
                     + format_matrix(results, "probe"))
    if "cka" in results.matrices:
        parts.append("Drift: linear CKA of each task's test features against right after learning it\n"
                     + format_matrix(results, "cka"))
    parts.append("Verdict: " + verdict_text)
    seconds, run = probe_seconds(results), results.timings.get("run_seconds")
    if seconds and run:
        parts.append(f"Probes and drift took {seconds:.0f}s of the run's {run:.0f}s ({seconds / run:.0%}).")
    return "\n\n".join(parts)


def markdown_report(results: Results, verdict_text: str, figures: list[str]) -> str:
    """``report.md``: verdict, per-task table, thresholds, matrices, timings and figures."""
    summary = retention_summary(results)
    lines = ["# Retention report", "", verdict_text, "", "## Per task, at the end of the run", "",
             task_table_markdown(results), "",
             f"Thresholds: a representation gain counts from {MIN_GAIN:.2f} (3 points: below it, one seed's noise); "
             f"a recoverable share is computed where live accuracy dropped at least {MIN_DROP:.2f}; a task counts as "
             f"learned well when live accuracy right after learning is at least {LEARNED_WELL:.2f}. "
             f"Recoverable share (overall, points-weighted): "
             + ("-" if not _ok(summary["recoverable_share"]) else f"{summary['recoverable_share']:.3f}") + ".",
             "", "## Summary", "", "```", format_summary(results), "```", ""]
    for name in results.matrices:
        lines += [f"## Matrix: {name}", "", "```", format_matrix(results, name), "```", ""]
    seconds, run = probe_seconds(results), results.timings.get("run_seconds")
    if seconds and run:
        lines += [f"Probes and drift took {seconds:.1f} s of the run's {run:.1f} s ({seconds / run:.1%}).", ""]
    lines += [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def write_run_report(results: Results, run_dir: str | Path) -> str:
    """Write ``report.md``, the PNG figures and ``classification_report.csv`` into ``run_dir``;
    return the verdict (for the console and the MLflow run description)."""
    run_dir = Path(run_dir)
    text = verdict(results)
    figures = []
    if results.stages_done:
        figures.append(plot_retention_curves(results, run_dir / "retention_curves.png").name)
        figures.append(plot_matrices(results, run_dir / "matrices.png").name)
        layers = plot_layer_probes(results, run_dir / "layer_probes.png")
        if layers is not None:
            figures.append(layers.name)
    reports = results.extra.get("classification_reports")
    if reports:
        write_class_report_csv(reports, results.task_names, results.extra.get("class_names"),
                               run_dir / "classification_report.csv")
    (run_dir / "report.md").write_text(markdown_report(results, text, figures), encoding="utf-8")
    return text
