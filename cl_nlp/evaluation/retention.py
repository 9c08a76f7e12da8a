"""Where did each task's knowledge go, and where did it come from? Per task, with intervals.

Inputs are the run's results (0-based matrices ``M[k, j]`` = value on task ``j`` after training
through task ``k``, plus per-example correctness vectors; see
:class:`cl_nlp.evaluation.results.Results`). For task ``j`` as of stage ``s`` (tasks learned so
far), with ``R`` the live reading, ``P`` the representation probe (the linear probe on the last
layer, or on the best layer chosen on validation when layer-wise probes ran) and ``P0`` the same
probe on the untouched pretrained encoder:

- **learned**: ``R_jj`` (live accuracy right after learning ``j``) significantly above chance;
  otherwise the task is **never learned** and nothing about its forgetting is said;
- **live change** ``R_sj − R_jj`` and **probe change** ``P_sj − P_jj`` (representation retained
  against right after learning); **readout loss** ``P_sj − R_sj`` — what a re-fitted readout
  gets that the live head does not. The live drop splits exactly into the two:
  ``R_jj − R_sj = (P_jj − P_sj) + ((P_sj − R_sj) − (P_jj − R_jj))``;
- **gain** ``P_jj − P0_j`` (what fine-tuning added to the representation) and the final probe
  against ``P0`` (representation retained against pretraining);
- **category** (earlier tasks): ``not_forgotten`` (live change within the margin), ``readout``
  (live dropped, probe within the margin of right after learning), ``both`` (live and probe
  dropped), ``representation_unclear`` (live dropped, probe change unclear), ``live_dropped``
  (live dropped, no probes), ``cannot_tell`` (live change unclear: too few test examples), or
  ``never_learned``;
- **knowledge source**: ``pretraining`` (``P0`` above chance, no gain beyond the margin),
  ``fine-tuning`` (``P0`` within the margin of chance, a gain), ``both`` (``P0`` above chance and
  a gain), ``none`` (neither the pretrained probe nor the probe after learning shown above
  chance), or ``undetermined``.

Outcomes (higher / lower / same within the margin / unclear) come from
:func:`cl_nlp.evaluation.judgement.judge`; per-task intervals are at ``1 − ALPHA / m``
(Bonferroni over the ``m`` tasks a question is asked of), so that each per-task list is
right as a whole with 95% confidence. Differences use Newcombe's paired interval when the
correctness vectors exist, the unpaired one when only test sizes are known (older files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cl_nlp.evaluation.intervals import (
    paired_difference_interval,
    unpaired_difference_interval,
    wilson_interval,
)
from cl_nlp.evaluation.judgement import HIGHER, LOWER, SAME, UNCLEAR, Estimate, judge
from cl_nlp.evaluation.reference_levels import (
    best_level,
    chance_level,
    margin,
    n_test_examples,
)
from cl_nlp.evaluation.results import Results

ALPHA = 0.05          # family-wise error rate per question
TABLE_LEVEL = 0.95    # level of the descriptive per-accuracy intervals (report table, MLflow)
ACCURACIES = {        # name -> (reading role, stage role)
    "pretrained_probe": ("probe", "pretrained"), "probe_after": ("probe", "after"), "probe_final": ("probe", "final"),
    "live_after": ("live", "after"), "live_final": ("live", "final"),
    "task_aware_after": ("task_aware", "after"), "task_aware_final": ("task_aware", "final"),
    "ncm_pretrained": ("ncm_probe", "pretrained"), "ncm_after": ("ncm_probe", "after"), "ncm_final": ("ncm_probe", "final"),
}
DIFFERENCES = {       # name -> (first, second): accuracy(first) - accuracy(second), same test examples
    "live_change": ("live_final", "live_after"), "probe_change": ("probe_final", "probe_after"),
    "readout_loss": ("probe_final", "live_final"), "readout_loss_after": ("probe_after", "live_after"),
    "gain": ("probe_after", "pretrained_probe"), "final_vs_pretrained": ("probe_final", "pretrained_probe"),
    "ncm_vs_linear": ("ncm_final", "probe_final"),
}
CATEGORIES = ("never_learned", "not_forgotten", "readout", "both", "representation_unclear", "live_dropped",
              "cannot_tell")
SOURCES = ("pretraining", "fine-tuning", "both", "none", "undetermined")


def probe_reading(results: Results) -> str:
    """The representation probe the verdict uses: the best layer's when layer-wise probes ran."""
    return "probe_best_layer" if "probe_best_layer" in results.matrices else "probe"


def stage_of(role: str, j: int, stage: int) -> int:
    """Stage index (0 = pretrained) of a role for task ``j`` at ``stage``."""
    return {"pretrained": 0, "after": j + 1, "final": stage}[role]


def accuracy_at(results: Results, reading: str, stage: int, j: int) -> float:
    """The recorded accuracy (NaN when not measured)."""
    if stage == 0:
        v = results.before.get(reading)
        return float(v[j]) if v is not None else math.nan
    m = results.matrices.get(reading)
    return float(m[stage - 1, j]) if m is not None else math.nan


@dataclass
class TaskRetention:
    """One task's numbers, outcomes and labels as of ``stage`` (see the module docstring)."""

    task: str
    index: int
    stage: int
    n: int | None
    chance: float
    best: float
    margin: float
    levels: dict[str, float]                 # question -> per-task confidence level used
    accuracies: dict[str, Estimate]          # TABLE_LEVEL Wilson intervals
    differences: dict[str, Estimate]         # at the level of the question they answer
    outcomes: dict[str, str] = field(default_factory=dict)
    tests: dict[str, Estimate] = field(default_factory=dict)  # accuracies judged against chance, at their question's level
    category: str | None = None              # earlier tasks only
    source: str | None = None                # with probes only
    paired: bool = True                      # differences from per-example vectors

    @property
    def earlier(self) -> bool:
        return self.index < self.stage - 1

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else float(x)

        return {"task": self.task, "index": self.index, "stage": self.stage, "n": self.n, "chance": num(self.chance),
                "best": num(self.best), "margin": num(self.margin), "levels": self.levels,
                "accuracies": {k: e.to_dict() for k, e in self.accuracies.items()},
                "differences": {k: e.to_dict() for k, e in self.differences.items()},
                "tests": {k: e.to_dict() for k, e in self.tests.items()},
                "outcomes": self.outcomes, "category": self.category, "source": self.source, "paired": self.paired}


class _TaskReader:
    """Reads one task's accuracies and vectors by role; builds its estimates."""

    def __init__(self, results: Results, j: int, stage: int):
        self.results, self.j, self.stage = results, j, stage
        self.probe = probe_reading(results)
        self.n = n_test_examples(results, j)

    def reading(self, role_reading: str) -> str:
        return self.probe if role_reading == "probe" else role_reading

    def value(self, name: str) -> float:
        reading, role = ACCURACIES[name]
        return accuracy_at(self.results, self.reading(reading), stage_of(role, self.j, self.stage), self.j)

    def vector(self, name: str) -> np.ndarray | None:
        reading, role = ACCURACIES[name]
        return self.results.correct_vector(self.reading(reading), stage_of(role, self.j, self.stage), self.j)

    def accuracy(self, name: str, level: float) -> Estimate:
        value, vec = self.value(name), self.vector(name)
        if vec is not None:
            k, n = int(vec.sum()), vec.size
        elif self.n and math.isfinite(value):
            k, n = value * self.n, self.n
        else:
            return Estimate(value, level=level)
        lo, hi = wilson_interval(k, n, level)
        return Estimate(value, float(lo), float(hi), level, "wilson")

    def difference(self, name: str, level: float) -> Estimate:
        first, second = DIFFERENCES[name]
        a, b = self.value(first), self.value(second)
        va, vb = self.vector(first), self.vector(second)
        if va is not None and vb is not None and va.size == vb.size:
            d, lo, hi = paired_difference_interval(va, vb, level)
            return Estimate(d, lo, hi, level, "paired")
        if self.n and math.isfinite(a) and math.isfinite(b):
            d, lo, hi = unpaired_difference_interval(a, b, self.n, level)
            return Estimate(d, lo, hi, level, "unpaired")
        return Estimate(a - b, level=level)


def _level(m: int) -> float:
    return 1 - ALPHA / max(m, 1)


def _category(o: dict[str, str], has_probe: bool, sized: bool) -> str:
    if o["learned"] != HIGHER:
        return "never_learned" if sized else "cannot_tell"  # no test size: nothing can be tested
    live = o["live_change"]
    if live in (SAME, HIGHER):
        return "not_forgotten"
    if live == UNCLEAR:
        return "cannot_tell"
    if not has_probe:
        return "live_dropped"
    return {SAME: "readout", HIGHER: "readout", LOWER: "both"}.get(o["probe_change"], "representation_unclear")


def knowledge_source(pretrained_vs_chance: str, after_vs_chance: str, gain: str) -> str:
    """The source rule shared by tasks and runs (see the module docstring)."""
    knows_nothing = (SAME, LOWER)
    if pretrained_vs_chance != HIGHER and after_vs_chance != HIGHER:
        return "none"  # neither probe is shown above chance: no evidence the encoder holds anything of the task
    if pretrained_vs_chance == HIGHER and gain in (SAME, LOWER):
        return "pretraining"
    if pretrained_vs_chance == HIGHER and gain == HIGHER:
        return "both"
    if pretrained_vs_chance in knows_nothing and gain == HIGHER:
        return "fine-tuning"
    return "undetermined"


def assess_tasks(results: Results, stage: int | None = None) -> list[TaskRetention]:
    """One :class:`TaskRetention` per task learned by ``stage`` (default: the last completed)."""
    s = stage or results.stages_done
    if s < 1:
        return []
    has_probe = probe_reading(results) in results.matrices
    readings = ("live", "task_aware", probe_reading(results), "ncm_probe")
    m_all, m_earlier = s, max(s - 1, 1)
    levels = {"learned": _level(m_all), "source": _level(m_all), "gain": _level(m_all),
              "live_change": _level(m_earlier), "probe_change": _level(m_earlier),
              "readout_loss": _level(m_earlier), "final_vs_pretrained": _level(m_earlier),
              "ncm_vs_linear": _level(m_earlier), "readout_loss_after": _level(m_earlier)}
    out = []
    for j in range(s):
        r = _TaskReader(results, j, s)
        chance = chance_level(results, j)
        best = best_level(results, j, s, readings)
        delta = margin(chance, best)
        earlier = j < s - 1
        accuracies = {k: r.accuracy(k, TABLE_LEVEL) for k in ACCURACIES if math.isfinite(r.value(k))}
        names = [k for k in DIFFERENCES if earlier or k == "gain"]
        differences = {k: r.difference(k, levels[k]) for k in names
                       if all(math.isfinite(r.value(x)) for x in DIFFERENCES[k])}
        outcomes = {k: judge(e, 0.0, delta) for k, e in differences.items()}
        tests = {"learned": r.accuracy("live_after", levels["learned"])}
        outcomes["learned"] = judge(tests["learned"], chance)
        t = TaskRetention(results.task_names[j], j, s, r.n, chance, best, delta, levels, accuracies, differences,
                          outcomes, tests, paired=all(e.method != "unpaired" for e in differences.values()))
        if has_probe and "pretrained_probe" in accuracies and "probe_after" in accuracies:
            for key, name in (("pretrained_vs_chance", "pretrained_probe"), ("after_vs_chance", "probe_after")):
                tests[key] = r.accuracy(name, levels["source"])
                outcomes[key] = judge(tests[key], chance, delta)
            t.source = knowledge_source(outcomes["pretrained_vs_chance"], outcomes["after_vs_chance"],
                                        outcomes.get("gain", UNCLEAR))
        if earlier:
            outcomes.setdefault("live_change", UNCLEAR)
            outcomes.setdefault("probe_change", UNCLEAR)
            t.category = _category(outcomes, has_probe, bool(r.n))
        out.append(t)
    return out


def retention_matrix(R: np.ndarray) -> np.ndarray:
    """``R[k, j] / R[j, j]`` for ``k >= j``; NaN elsewhere or where ``R[j, j]`` is 0 or missing."""
    R = np.asarray(R, dtype=float)
    out = np.full(R.shape, np.nan)
    diag = np.diag(R)
    for j in range(R.shape[1]):
        if diag[j] > 0:
            out[j:, j] = R[j:, j] / diag[j]
    return out


def probe_seconds(results: Results) -> float:
    """Seconds spent on probes and drift in the whole run (``probe_seconds/*`` timings)."""
    return float(sum(v for k, v in results.timings.items() if k.startswith("probe_seconds/")))


def final_retention_metrics(results: Results) -> dict[str, float]:
    """The ``final/*`` metrics of the retention question (see :func:`cl_nlp.evaluation.retention_overall.final_metrics`)."""
    from cl_nlp.evaluation.retention_overall import (
        final_metrics,  # that module builds on this one
    )

    return final_metrics(results)
