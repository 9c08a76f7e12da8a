"""The run-level answer: the per-task numbers of :mod:`cl_nlp.evaluation.retention` averaged over
tasks, with 95% intervals.

Averages are over the *earlier tasks that were learned* (the last task cannot have been
forgotten yet; a task never learned cannot be); the gain and the pretrained level are over every
task probed so far. An average of accuracies or of paired differences gets its interval from the
tasks' own 95% intervals (Wilson, Newcombe) combined by MOVER (Zou & Donner 2008), which keeps
their small-sample honesty: a percentile bootstrap covers a 12-example paired difference only
~73% of the time where 95% is claimed (docs/retention.md). Shares are ratios of sums
(``Σ(P_jj − P_sj) / Σ(R_jj − R_sj)``, so a task that barely moved cannot dominate) and have no
closed form: they get a stratified paired bootstrap over test examples — each draw resamples
every task's test examples, the same draw for every reading and stage of that task, seeded from
a constant and the task index so the same run folder always gives the same interval. Without
per-example vectors (older results files) shares get no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_nlp.evaluation import metrics
from cl_nlp.evaluation.intervals import (
    bootstrap_multiplicities,
    mover_mean,
    percentile_interval,
)
from cl_nlp.evaluation.judgement import HIGHER, LOWER, SAME, UNCLEAR, Estimate, judge
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import (
    DIFFERENCES,
    TaskRetention,
    _TaskReader,
    assess_tasks,
    probe_reading,
    probe_seconds,
    retention_matrix,
)

LEVEL = 0.95
DRAWS = 4000
SEED = 20_250_101  # any constant: fixed so that re-reading a run folder reproduces its intervals

# name -> (kind, terms, task set). "accuracy": mean of one accuracy; "difference": mean of one of
# retention.DIFFERENCES; "ratio": Σ(t0 − t1) / Σ(t2 − t3) over the set. Task sets: "earlier"
# (learned earlier tasks), "all" (every task probed so far), "gained" (earlier tasks whose gain
# was significant).
QUANTITIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    **{name: ("accuracy", (name,), "earlier") for name in ("live_after", "live_final", "probe_after", "probe_final",
                                                           "ncm_final")},
    "pretrained_probe": ("accuracy", ("pretrained_probe",), "all"),
    **{name: ("difference", (name,), "all" if name == "gain" else "earlier") for name in DIFFERENCES},
    "representation_share": ("ratio", ("probe_after", "probe_final", "live_after", "live_final"), "earlier"),
    "surviving_share": ("ratio", ("probe_final", "pretrained_probe", "probe_after", "pretrained_probe"), "gained"),
}


def accuracy_terms(kind: str, terms: tuple[str, ...]) -> tuple[str, ...]:
    """The accuracies a quantity is computed from."""
    return DIFFERENCES[terms[0]] if kind == "difference" else terms


@dataclass
class RunRetention:
    """Per-task assessments plus their aggregates, outcomes and the run's labels."""

    stage: int
    tasks: list[TaskRetention]
    aggregates: dict[str, Estimate] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)   # task set of each aggregate
    margin: float = 0.0
    outcomes: dict[str, str] = field(default_factory=dict)
    category: str = "cannot_tell"
    source: str | None = None
    gain_fate: str | None = None
    drift: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def task_sets(self) -> dict[str, list[TaskRetention]]:
        learned = [t for t in self.tasks if t.outcomes.get("learned") == HIGHER]
        earlier = [t for t in learned if t.earlier]
        gained = [t for t in earlier if t.outcomes.get("gain") == HIGHER]
        return {"earlier": earlier, "all": [t for t in self.tasks if "pretrained_probe" in t.accuracies], "gained": gained}

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "level": LEVEL, "margin": self.margin, "category": self.category,
                "source": self.source, "gain_fate": self.gain_fate, "outcomes": self.outcomes,
                "aggregates": {k: e.to_dict() for k, e in self.aggregates.items()}, "members": self.members,
                "drift": {k: (None if not math.isfinite(v) else v) for k, v in self.drift.items()},
                "notes": self.notes, "tasks": [t.to_dict() for t in self.tasks]}


def _draws(results: Results, t: TaskRetention, names: set[str]) -> dict[str, np.ndarray] | None:
    """Bootstrap accuracies (DRAWS,) of each named accuracy of task ``t``; None without every vector."""
    reader = _TaskReader(results, t.index, t.stage)
    vectors = {k: reader.vector(k) for k in names}
    if not vectors or any(v is None for v in vectors.values()):
        return None
    n = next(iter(vectors.values())).size
    if n == 0 or any(v.size != n for v in vectors.values()):
        return None
    counts = bootstrap_multiplicities(n, DRAWS, np.random.default_rng([SEED, t.index]))
    order = sorted(names)
    resampled = counts @ np.stack([vectors[k] for k in order], axis=1).astype(np.float32) / n
    return {k: resampled[:, i].astype(float) for i, k in enumerate(order)}


def ratio_of_sums(terms: tuple[str, ...], members: list[TaskRetention], get) -> Any:
    """``Σ(t0 − t1) / Σ(t2 − t3)`` over ``members``, with ``get(task, accuracy name)`` (arrays broadcast)."""
    num = sum(get(t, terms[0]) - get(t, terms[1]) for t in members)
    den = sum(get(t, terms[2]) - get(t, terms[3]) for t in members)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def aggregate(results: Results, kind: str, terms: tuple[str, ...], members: list[TaskRetention]) -> Estimate:
    """One run-level quantity over ``members`` with its 95% interval (MOVER or bootstrap, see the module)."""
    if kind == "ratio":
        point = float(ratio_of_sums(terms, members, lambda t, k: t.accuracies[k].value))
        draws = {t.index: _draws(results, t, set(terms)) for t in members}
        if all(d is not None for d in draws.values()):
            lo, hi = percentile_interval(ratio_of_sums(terms, members, lambda t, k: draws[t.index][k]), LEVEL)
            return Estimate(point, lo, hi, LEVEL, "bootstrap")
        return Estimate(point, level=LEVEL)
    parts = []
    for t in members:
        reader = _TaskReader(results, t.index, t.stage)
        parts.append(reader.accuracy(terms[0], LEVEL) if kind == "accuracy" else reader.difference(terms[0], LEVEL))
    mean, lo, hi = mover_mean([e.value for e in parts], [e.lo for e in parts], [e.hi for e in parts])
    return Estimate(mean, lo, hi, LEVEL, "mover") if math.isfinite(lo) else Estimate(mean, level=LEVEL)


def _category(o: dict[str, str], has_probe: bool) -> str:
    live = o.get("live_change", UNCLEAR)
    if live in (SAME, HIGHER):
        return "not_forgotten"
    if live == UNCLEAR:
        return "cannot_tell"
    if not has_probe:
        return "live_dropped"
    return {SAME: "readout", HIGHER: "readout", LOWER: "both"}.get(o.get("probe_change"), "representation_unclear")


def _drift(results: Results, stage: int) -> dict[str, float]:
    out = {}
    for name in ("cka", "cka_null", "cka_debiased", "cka_debiased_null", "cka_debiased_null_hi",
                 "cka_pretrained", "cka_debiased_pretrained"):
        m = results.matrices.get(name)
        if m is not None and stage >= 2:
            row = m[stage - 1, : stage - 1]
            if np.isfinite(row).any():
                out[name] = float(np.nanmean(row))
    return out


def _source(tasks: list[TaskRetention]) -> str | None:
    sources = [t.source for t in tasks if t.source is not None]
    if not sources:
        return None
    determined = {s for s in sources if s != "undetermined"}
    if len(determined) > 1:
        return "mixed"
    return sources[0] if len(set(sources)) == 1 else "undetermined"


def _notes(results: Results, tasks: list[TaskRetention]) -> list[str]:
    notes = []
    if any(t.n is None for t in tasks):
        notes.append("the results file gives no test-set sizes, so no interval can be computed: every "
                     "statement that needs one is left undecided")
    elif any(not t.paired for t in tasks):
        notes.append("this run saved no per-example correctness (an older results file), so differences use "
                     "Newcombe's unpaired interval (usually wider than the paired one) and shares get no interval")
    if probe_reading(results) not in results.matrices:
        notes.append("probes were off (eval.probes=false): a lost representation cannot be told from a "
                     "drifted readout, nor pretraining's knowledge from fine-tuning's")
    elif "ncm_probe" not in results.matrices:
        notes.append("no nearest-class-mean probe was recorded (an older run)")
    if "cka" in results.matrices and "cka_debiased" not in results.matrices:
        notes.append("only the biased linear CKA was recorded; its level for independent features and the "
                     "debiased CKA need the features, which a run folder does not keep")
    return notes


def assess_run(results: Results, stage: int | None = None) -> RunRetention:
    """Per-task assessments, their aggregates and the run's category, source and notes."""
    s = stage or results.stages_done
    run = RunRetention(s, assess_tasks(results, s))
    run.notes = _notes(results, run.tasks)
    if s < 1:
        return run
    run.drift = _drift(results, s)
    run.source = _source(run.tasks)
    sets = run.task_sets()
    for name, (kind, terms, which) in QUANTITIES.items():
        members = [t for t in sets[which] if all(k in t.accuracies for k in accuracy_terms(kind, terms))]
        if members:
            run.aggregates[name] = aggregate(results, kind, terms, members)
            run.members[name] = [t.task for t in members]
    earlier = sets["earlier"]
    run.margin = float(np.mean([t.margin for t in earlier])) if earlier else 0.0
    for name in DIFFERENCES:
        if name in run.aggregates:
            members = [t for t in run.tasks if t.task in run.members[name]]
            run.outcomes[name] = judge(run.aggregates[name], 0.0, float(np.mean([t.margin for t in members])))
    if run.outcomes.get("live_change") != LOWER:
        # A share of a drop that is not shown to exist is a ratio of noise: not reported.
        run.aggregates.pop("representation_share", None)
        run.members.pop("representation_share", None)
    if "representation_share" in run.aggregates:
        e = run.aggregates["representation_share"]
        run.aggregates["recoverable_share"] = Estimate(1 - e.value, 1 - e.hi, 1 - e.lo, e.level, e.method)
        run.members["recoverable_share"] = run.members["representation_share"]
    if not any(t.outcomes.get("learned") == HIGHER for t in run.tasks):
        run.category = "never_learned" if all(t.n for t in run.tasks) else "cannot_tell"
    elif s == 1:
        run.category = "one_task"
    elif not earlier:
        run.category = "nothing_to_forget"
    else:
        run.category = _category(run.outcomes, probe_reading(results) in results.matrices)
    if sets["gained"] and "final_vs_pretrained" in run.aggregates:
        _gain_fate(run, results, sets["gained"])
    return run


def gain_fate(final_vs_pretrained: str, within_margin: str, probe_change: str) -> str:
    """What became of fine-tuning's gain, from the final probe against P0 (judged without a margin),
    the same within the margin, and the probe change since right after learning (without a margin).

    ``survives``: the final probe is still significantly above P0. ``below_pretrained``:
    significantly below. ``back_to_pretrained``: neither, within the margin of P0, *and* the probe
    dropped significantly since right after learning (otherwise a small gain could simply still be
    there). ``unclear`` otherwise.
    """
    if final_vs_pretrained == HIGHER:
        return "survives"
    if final_vs_pretrained == LOWER:
        return "below_pretrained"
    if within_margin == SAME and probe_change == LOWER:
        return "back_to_pretrained"
    return "unclear"


def _gain_fate(run: RunRetention, results: Results, gained: list[TaskRetention]) -> None:
    names = [t.task for t in gained]
    margin = float(np.mean([t.margin for t in gained]))
    kept = aggregate(results, "difference", ("final_vs_pretrained",), gained)
    drop = aggregate(results, "difference", ("probe_change",), gained)
    run.aggregates["gained_final_vs_pretrained"], run.aggregates["gained_probe_change"] = kept, drop
    run.members["gained_final_vs_pretrained"] = run.members["gained_probe_change"] = names
    run.outcomes["gained_final_vs_pretrained"] = judge(kept)
    run.outcomes["gained_final_within_margin"] = judge(kept, 0.0, margin)
    run.outcomes["gained_probe_change"] = judge(drop)
    run.gain_fate = gain_fate(run.outcomes["gained_final_vs_pretrained"], run.outcomes["gained_final_within_margin"],
                              run.outcomes["gained_probe_change"])


# Aggregates logged as final/<name> with final/<name>_lo and _hi (names read by `cl-nlp compare` and `sweep`).
FINAL_AGGREGATES = {"live_change": "live_change", "probe_change": "probe_change", "readout_loss": "readout_loss",
                    "gain": "representation_gain", "final_vs_pretrained": "final_vs_pretrained",
                    "representation_share": "representation_share", "recoverable_share": "recoverable_share",
                    "surviving_share": "surviving_share", "pretrained_probe": "pretrained_probe_acc",
                    "ncm_vs_linear": "ncm_vs_linear"}


def final_metrics(results: Results, run: RunRetention | None = None) -> dict[str, float]:
    """``final/*`` metrics: the run-level averages with their interval bounds, probe ACC/BWT/forgetting,
    mean drift and the probes' share of the run's time."""
    run = run or assess_run(results)
    s = run.stage
    out: dict[str, float] = {}
    for name, key in FINAL_AGGREGATES.items():
        e = run.aggregates.get(name, Estimate(math.nan))
        out[f"final/{key}"], out[f"final/{key}_lo"], out[f"final/{key}_hi"] = e.value, e.lo, e.hi
    probe = probe_reading(results)
    if probe in results.matrices and s:
        p = metrics.summary(results.matrices[probe], s)
        out.update({"final/probe_acc": p["acc"], "final/probe_bwt": p["bwt"], "final/probe_forgetting": p["forgetting"]})
    else:
        out.update({"final/probe_acc": math.nan, "final/probe_bwt": math.nan, "final/probe_forgetting": math.nan})
    for name in ("live", probe):
        if name in results.matrices and s >= 2:
            ret = retention_matrix(results.matrices[name])[s - 1, : s - 1]
            out["final/" + ("live" if name == "live" else "probe") + "_retention"] = (
                float(np.nanmean(ret)) if np.isfinite(ret).any() else math.nan)
    for key in ("cka", "cka_null", "cka_debiased", "cka_debiased_null"):
        out[f"final/{key}"] = run.drift.get(key, math.nan)
    seconds = probe_seconds(results)
    out["final/probe_seconds"] = seconds
    total = results.timings.get("run_seconds", math.nan)
    out["final/probe_time_share"] = seconds / total if total and not math.isnan(total) else math.nan
    out["final/tasks_learned"] = float(sum(t.outcomes.get("learned") == HIGHER for t in run.tasks))
    return out
