"""Every MLflow metric key a run logs, named in one place.

Per stage (MLflow step = stage): ``acc/<task>`` and ``task_aware_acc/<task>`` (the two
readings of the accuracy matrix's row), ``acc_avg``, ``bwt``, ``forgetting``, ``fwt`` (and
each with ``_task_aware``), the retention matrices under their prefixes (``probe_acc/<task>``,
``cka/<task>``, ...), ``strategy/<figure>`` and ``time/train_seconds``. Per logged step
(step = optimisation step): ``train/loss`` and ``train/lr``. Once, at the end: ``final/*``.
Comparisons rebuild matrices from the same per-task keys (:data:`METRIC_PREFIX`).
"""

from __future__ import annotations

import math

from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import final_retention_metrics

# MLflow metric prefix of each recorded matrix (the rest keep their matrix name).
METRIC_PREFIX = {"live": "acc", "task_aware": "task_aware_acc", "probe": "probe_acc", "ncm_probe": "ncm_probe_acc",
                 "probe_best_layer": "probe_best_layer_acc"}
# The suffix of each accuracy reading's summary keys: acc_avg (live), acc_avg_task_aware.
READING_SUFFIX = {"live": "", "task_aware": "_task_aware"}

TRAIN_LOSS = "train/loss"
TRAIN_LR = "train/lr"
TRAIN_SECONDS = "time/train_seconds"
PROBE_SECONDS = "time/probe_seconds"
STRATEGY_PREFIX = "strategy/"
FINAL_PREFIX = "final/"


def task_key(matrix: str, task: str) -> str:
    """The per-task key of ``matrix`` (e.g. ``acc/<task>`` for the live matrix)."""
    return f"{METRIC_PREFIX.get(matrix, matrix)}/{task}"


def accuracy_metrics(results: Results, stage: int) -> dict[str, float]:
    """``acc/<task>`` and ``task_aware_acc/<task>`` for each task learned so far, and ACC/BWT/
    forgetting/FWT so far, per reading."""
    out: dict[str, float] = {}
    readings = dict(READING_SUFFIX, **({"ncm": "_ncm"} if "ncm" in results.matrices else {}))  # ncm: eval.ncm only
    for name, suffix in readings.items():
        row = results.matrix(name)[stage - 1]
        for j in range(stage):
            out[task_key(name, results.task_names[j])] = float(row[j])
        summary = results.summary(name, stage)
        out[f"acc_avg{suffix}"] = summary["acc"]
        out[f"bwt{suffix}"] = summary["bwt"]
        out[f"forgetting{suffix}"] = summary["forgetting"]
        out[f"fwt{suffix}"] = summary.get("fwt", float("nan"))
    return out


def strategy_metrics(figures: dict[str, float]) -> dict[str, float]:
    """A strategy's own figures (buffer fill, Fisher mass) under ``strategy/``."""
    return {f"{STRATEGY_PREFIX}{k}": v for k, v in figures.items()}


def final_metrics(results: Results) -> dict[str, float]:
    """Summary metrics of the finished run, under ``final/``."""
    out = final_retention_metrics(results) if results.stages_done else {}  # final/probe_acc, final/recoverable_share, ...
    for name, suffix in READING_SUFFIX.items():
        for metric, value in results.summary(name).items():
            out[f"{FINAL_PREFIX}{metric}{suffix}"] = value
    out[f"{FINAL_PREFIX}run_seconds"] = results.timings.get("run_seconds", math.nan)
    # Training alone (no evaluation, probes or loading): what a strategy itself costs.
    train = [v for k, v in results.timings.items() if k.startswith("train_seconds/")]
    out[f"{FINAL_PREFIX}train_seconds"] = sum(train) if train else math.nan
    return out


__all__ = ["METRIC_PREFIX", "READING_SUFFIX", "TRAIN_LOSS", "TRAIN_LR", "TRAIN_SECONDS", "PROBE_SECONDS",
           "accuracy_metrics", "final_metrics", "strategy_metrics", "task_key"]
