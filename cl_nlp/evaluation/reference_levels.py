"""The levels every accuracy of a task is read against: chance, the pretrained probe, the task's best.

- **Chance** ``c_j``: the accuracy of the best prediction that ignores the input — ``1 / k_j``
  for a task with ``k_j`` balanced classes, the largest class's share of the test split when
  the classes are unbalanced. The same level serves every reading (live, task-aware, probes):
  task-aware and probe predictions range over the task's ``k_j`` classes; the live prediction
  of a class-incremental head ranges over *all* the head's classes, so a uniform guess would
  score ``1 / K`` — but a head that only ever predicts the newest task's classes (what
  sequential fine-tuning produces) scores ``1 / k_j`` on that task without reading the input,
  so ``1 / K`` would certify as "learned" a head that knows only which task came last.
- **Pretrained probe** ``P0_j``: what the untouched encoder already made linearly decodable.
- **The task's best** ``B_j``: the highest accuracy any reading reached on the task at any
  stage (the pretrained probe included) — the top of the range the task's numbers live in.

The **margin** ``δ_j = MARGIN_SHARE · (B_j − c_j)`` is the change counted as negligible: a
tenth of the range between chance and the best the run reached on that task. It scales with
what there was to learn, not with a fixed number of points (10 points of a 3-way task's 0.33 →
0.90 range is a large change; of a 150-way task's 0.01 → 0.95 it is a moderate one), and it
is used only for "the same within the margin" statements (see
:mod:`cl_nlp.evaluation.judgement`); "higher"/"lower" need a confidence interval excluding 0.
"""

from __future__ import annotations

import math

import numpy as np

from cl_nlp.evaluation.results import Results

# Share of the (best - chance) range below which a change counts as negligible.
MARGIN_SHARE = 0.10


def _counts_from_class_reports(results: Results, j: int) -> list[int] | None:
    """Per-class test counts of task ``j`` from the classification reports (older results files)."""
    name = results.task_names[j]
    for stage in sorted(results.extra.get("classification_reports", {}), key=int):
        report = results.extra["classification_reports"][stage].get(name)
        if report and report.get("support"):
            return [int(s) for s in report["support"]]
    return None


def class_counts(results: Results, j: int) -> list[int] | None:
    """Test examples per class of task ``j`` (from the results file, else its classification reports)."""
    if j < len(results.test_class_counts) and results.test_class_counts[j]:
        return list(results.test_class_counts[j])
    return _counts_from_class_reports(results, j)


def n_test_examples(results: Results, j: int) -> int | None:
    """Number of test examples of task ``j``, or ``None`` when the results file does not say."""
    for stages in results.correct.values():
        for tasks in stages.values():
            if j in tasks:
                return int(tasks[j].size)
    counts = class_counts(results, j)
    return int(sum(counts)) if counts else None


def chance_level(results: Results, j: int) -> float:
    """``c_j``: the best input-blind accuracy on task ``j`` (NaN when the class counts are unknown)."""
    counts = class_counts(results, j)
    if counts and sum(counts) > 0:
        return max(1.0 / len(counts), max(counts) / sum(counts))
    if j < len(results.task_classes) and results.task_classes[j]:
        return 1.0 / len(results.task_classes[j])
    return math.nan


def chance_levels(results: Results) -> np.ndarray:
    """:func:`chance_level` of every task."""
    return np.array([chance_level(results, j) for j in range(results.num_tasks)])


def best_level(results: Results, j: int, stage: int, readings: tuple[str, ...]) -> float:
    """``B_j``: the highest accuracy any of ``readings`` reached on task ``j`` from learning it to ``stage``,
    the pretrained probe included."""
    values = [results.before[r][j] for r in readings if r in results.before]
    for r in readings:
        if r in results.matrices:
            values += list(results.matrices[r][j:stage, j])
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite) if finite else math.nan


def margin(chance: float, best: float) -> float:
    """``δ_j = MARGIN_SHARE · (B_j − c_j)`` (0 when either level is unknown or the task never rose above chance)."""
    if not (math.isfinite(chance) and math.isfinite(best)):
        return 0.0
    return MARGIN_SHARE * max(best - chance, 0.0)
