"""Per-class precision, recall and F1 of one task's predictions, and their CSV form.

Scores are computed over the task's own classes. In a class-incremental stream a prediction
may name a class of another task: it counts against the true class's recall and against no
precision of this task's classes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np


def per_class_scores(labels: np.ndarray, predictions: np.ndarray, classes: np.ndarray) -> dict[str, list]:
    """Precision, recall, F1 and support for each class in ``classes`` (0 where undefined).

    Example:
        >>> s = per_class_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 5]), np.array([0, 1]))
        >>> s["precision"], s["recall"], s["support"]
        ([1.0, 0.5], [0.5, 0.5], [2, 2])
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    out: dict[str, list] = {"classes": [], "precision": [], "recall": [], "f1": [], "support": []}
    for c in np.asarray(classes).tolist():
        tp = int(np.sum((predictions == c) & (labels == c)))
        predicted = int(np.sum(predictions == c))
        support = int(np.sum(labels == c))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out["classes"].append(int(c))
        out["precision"].append(precision)
        out["recall"].append(recall)
        out["f1"].append(f1)
        out["support"].append(support)
    return out


def write_class_report_csv(reports: dict[str, dict[str, dict[str, Any]]], task_names: list[str],
                           class_names: list[str] | None, path: str | Path) -> None:
    """One CSV row per (stage, task, class) from ``reports[stage][task]`` as built by the evaluator."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["stage", "after_task", "task", "class_id", "class_name", "precision", "recall", "f1", "support"])
        for stage in sorted(reports, key=int):
            after = task_names[int(stage) - 1] if int(stage) >= 1 else "untrained"
            for task, s in reports[stage].items():
                for i, c in enumerate(s["classes"]):
                    name = class_names[c] if class_names and c < len(class_names) else ""
                    w.writerow([stage, after, task, c, name, f"{s['precision'][i]:.4f}", f"{s['recall'][i]:.4f}",
                                f"{s['f1'][i]:.4f}", s["support"][i]])
