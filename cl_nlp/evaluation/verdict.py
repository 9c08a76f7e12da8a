"""The run's verdict in plain words, its markdown report, and the files written at the end of a run.

The verdict is a few bullets (:mod:`cl_nlp.evaluation.bullets`), each resting on intervals
computed from the run's results file alone (:mod:`cl_nlp.evaluation.retention`,
:mod:`cl_nlp.evaluation.retention_overall`), so ``cl-nlp report RUN_DIR`` re-derives exactly
what the run printed. ``report.md`` adds the per-task tables those bullets summarise;
``retention.json`` holds the same numbers, outcomes and claims for scripts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from cl_nlp.evaluation.bullets import render, verdict_claims
from cl_nlp.evaluation.claim_text import level_text
from cl_nlp.evaluation.class_report import write_class_report_csv
from cl_nlp.evaluation.judgement import Estimate
from cl_nlp.evaluation.plots import (
    plot_layer_probes,
    plot_matrices,
    plot_retention_curves,
)
from cl_nlp.evaluation.reference_levels import MARGIN_SHARE
from cl_nlp.evaluation.report import format_matrix, format_summary
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import ALPHA, probe_seconds
from cl_nlp.evaluation.retention_overall import LEVEL, RunRetention, assess_run


def verdict(results: Results) -> str:
    """The plain-words verdict of a run as markdown bullets, every number from its results."""
    run = assess_run(results)
    return render(verdict_claims(results, run), run)


def _acc(e: Estimate | None) -> str:
    if e is None or not math.isfinite(e.value):
        return "-"
    return f"{e.value:.3f}" + (f" [{e.lo:.2f}, {e.hi:.2f}]" if e.has_interval else "")


def _diff(e: Estimate | None, outcome: str | None) -> str:
    if e is None or not math.isfinite(e.value):
        return "-"
    text = f"{e.value * 100:+.1f}"
    if e.has_interval:
        text += f" [{e.lo * 100:+.1f}, {e.hi * 100:+.1f}]"
    return text + (f" {outcome}" if outcome else "")


def _num(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


ACCURACY_COLUMNS = (("pretrained_probe", "P0"), ("probe_after", "probe after learning"), ("probe_final", "final probe"),
                    ("ncm_final", "final NCM probe"), ("live_after", "live after learning"), ("live_final", "final live"))
DIFFERENCE_COLUMNS = (("live_change", "live change"), ("probe_change", "probe change"),
                      ("readout_loss", "readout loss"), ("gain", "gain P_jj-P0"),
                      ("final_vs_pretrained", "final probe-P0"), ("ncm_vs_linear", "NCM-linear"))


def task_tables_markdown(run: RunRetention) -> str:
    """Two per-task tables: levels and accuracies (95% Wilson), and differences (per-question level, points)."""
    head = ["task", "n", "chance", "best", "margin", *(label for _, label in ACCURACY_COLUMNS), "category", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in run.tasks:
        cells = [t.task, str(t.n or "-"), _num(t.chance), _num(t.best), _num(t.margin)]
        cells += [_acc(t.accuracies.get(k)) for k, _ in ACCURACY_COLUMNS]
        cells += [t.category or "-", t.source or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    levels = sorted({t.levels[k] for t in run.tasks for k in ("live_change", "gain")})
    lines += ["", (f"Differences in points, [interval] and outcome; intervals at {' / '.join(map(level_text, levels))} "
                   "(Bonferroni: 95% over the tasks each question is asked of; the gain over every task, the rest over "
                   "the earlier ones)."), "", "| task | " + " | ".join(label for _, label in DIFFERENCE_COLUMNS) + " |",
              "|" + "---|" * (len(DIFFERENCE_COLUMNS) + 1)]
    for t in run.tasks:
        cells = [_diff(t.differences.get(k), t.outcomes.get(k)) for k, _ in DIFFERENCE_COLUMNS]
        lines.append("| " + " | ".join([t.task, *cells]) + " |")
    return "\n".join(lines)


def aggregates_markdown(run: RunRetention) -> str:
    """The run-level averages with their 95% bootstrap intervals and outcomes."""
    lines = ["| quantity | tasks | value | 95% interval | outcome |", "|---|---|---|---|---|"]
    for name, e in run.aggregates.items():
        interval = f"[{e.lo:.3f}, {e.hi:.3f}] ({e.method})" if e.has_interval else "-"
        lines.append(f"| {name} | {', '.join(run.members.get(name, []))} | {_num(e.value)} | {interval} | "
                     f"{run.outcomes.get(name, '')} |")
    return "\n".join(lines)


def closing_note(results: Results, verdict_text: str) -> str:
    """What a run prints at its end after the live matrix: probe and drift matrices, and the verdict."""
    parts = []
    if "probe" in results.matrices:
        parts.append("Probe accuracy (linear probe on the frozen encoder; 'untrained' row = pretrained encoder)\n"
                     + format_matrix(results, "probe"))
    drift = "cka_debiased" if "cka_debiased" in results.matrices else "cka"
    if drift in results.matrices:
        kind = "debiased CKA" if drift == "cka_debiased" else "linear CKA"
        parts.append(f"Drift: {kind} of each task's test features against right after learning it\n"
                     + format_matrix(results, drift))
    parts.append("Verdict:\n" + verdict_text)
    seconds, run = probe_seconds(results), results.timings.get("run_seconds")
    if seconds and run:
        parts.append(f"Probes and drift took {seconds:.0f}s of the run's {run:.0f}s ({seconds / run:.0%}).")
    return "\n\n".join(parts)


def markdown_report(results: Results, verdict_text: str, figures: list[str], run: RunRetention | None = None) -> str:
    """``report.md``: verdict, per-task tables, run-level averages, how to read them, matrices, figures."""
    run = run or assess_run(results)
    lines = ["# Retention report", "", "## Verdict", "", verdict_text, "",
             f"## Per task, at stage {run.stage}", "", task_tables_markdown(run), "",
             f"## Averages over tasks ({LEVEL:.0%} intervals)", "", aggregates_markdown(run), "",
             "## How to read this", "",
             ("Chance = the best input-blind accuracy (1/classes of the task, or its largest class's share); best = the "
              "highest accuracy any reading reached on the task; margin = "
              f"{MARGIN_SHARE:g} x (best - chance), the change counted as negligible. Outcomes: `higher`/`lower` = the "
              "interval excludes 0 and reaches past the margin; `same` = the interval lies within the margin; "
              "`unclear` = it holds 0 and reaches past the margin. Per-task statements hold with "
              f"{1 - ALPHA:.0%} confidence for each question as a whole (Bonferroni). Averages combine the tasks' own "
              "intervals (`mover`); shares come from a paired bootstrap over test examples (`bootstrap`). "
              "See docs/retention.md."), ""]
    if run.notes:
        lines += ["## What this run folder cannot tell", ""] + [f"- {n}" for n in run.notes] + [""]
    if results.stages_done:
        lines += ["## Summary", "", "```", format_summary(results), "```", ""]
    for name in results.matrices:
        lines += [f"## Matrix: {name}", "", "```", format_matrix(results, name), "```", ""]
    seconds, total = probe_seconds(results), results.timings.get("run_seconds")
    if seconds and total:
        lines += [f"Probes and drift took {seconds:.1f} s of the run's {total:.1f} s ({seconds / total:.1%}).", ""]
    lines += [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def write_run_report(results: Results, run_dir: str | Path) -> str:
    """Write ``report.md``, ``retention.json``, the PNG figures and ``classification_report.csv`` into
    ``run_dir``; return the verdict (for the console and the MLflow run description)."""
    run_dir = Path(run_dir)
    run = assess_run(results)
    claims = verdict_claims(results, run)
    text = render(claims, run)
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
    (run_dir / "report.md").write_text(markdown_report(results, text, figures, run), encoding="utf-8")
    data = {**run.to_dict(), "verdict": text, "claims": [c.to_dict() for c in claims]}
    (run_dir / "retention.json").write_text(json.dumps(strict_json(data), indent=2, allow_nan=False) + "\n",
                                            encoding="utf-8")
    return text


def strict_json(value):
    """Nested dicts/lists with NaN and infinities turned into ``None`` (strict JSON, like the results file)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
