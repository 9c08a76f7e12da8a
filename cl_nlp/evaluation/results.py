"""All matrices of a run, filled stage by stage, and their JSON form (the results file).

The file's schema is documented in docs/retention.md ("The results file"). Besides the
matrices it keeps, per (reading, stage, task), which test examples were predicted correctly —
packed bits, a few dozen bytes per task — so intervals for differences between two stages or
two readings of the same examples can be re-derived from the run folder alone
(``cl-nlp report``).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cl_nlp.evaluation import metrics

# Matrices of representation similarity (linear CKA), not accuracies: no ACC/BWT summary.
SIMILARITY_MATRICES = ("cka", "cka_pretrained", "cka_debiased", "cka_debiased_pretrained", "cka_null",
                       "cka_debiased_null", "cka_debiased_null_hi")
# Matrices that are neither accuracies nor similarities (no summary, no plot).
OTHER_MATRICES = ("probe_best_layer_index",)
SCHEMA_VERSION = 2


def pack_correct(correct: np.ndarray) -> dict[str, Any]:
    """A boolean vector as ``{"n": len, "bits": base64 of its packed bits}`` (JSON-compact)."""
    c = np.asarray(correct, dtype=bool)
    return {"n": int(c.size), "bits": base64.b64encode(np.packbits(c)).decode("ascii")}


def unpack_correct(packed: dict[str, Any]) -> np.ndarray:
    """The boolean vector :func:`pack_correct` stored."""
    raw = np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8)
    return np.unpackbits(raw)[: int(packed["n"])].astype(bool)


def _nan_matrix(n: int) -> np.ndarray:
    return np.full((n, n), np.nan)


def _to_json(a: np.ndarray) -> Any:
    return [_to_json(x) for x in a] if a.ndim > 1 else [None if math.isnan(v) else float(v) for v in a.tolist()]


def _from_json(x: Any) -> np.ndarray:
    return np.array(x, dtype=float)  # None → nan


@dataclass
class Results:
    """Accuracy matrices of one run.

    ``matrices[name][i, j]``: metric ``name`` on task ``j`` after training through task ``i``
    (``live``: the prediction a user gets — task-agnostic in class/domain-incremental streams,
    task-aware in task-incremental ones; ``task_aware``: argmax restricted to task ``j``'s
    classes). ``before[name][j]``: the same measured before any training (``b_j``). The
    evaluator's retention measures add ``probe`` (``before["probe"]`` = the pretrained
    encoder's probe), ``ncm_probe`` (nearest class mean), optional ``probe_layer<l>`` and
    ``probe_best_layer``, and drift matrices (``cka*``: similarities, not accuracies; see
    :mod:`cl_nlp.evaluation.evaluator`).

    ``correct[reading][stage][task]``: boolean vector over task ``task``'s test examples (in the
    split's order), True where that reading predicted the example correctly at ``stage``
    (0 = before training). ``task_classes[j]``: the class ids task ``j`` uses;
    ``test_class_counts[j]``: its test examples per class, in the same order.
    """

    task_names: list[str]
    scenario: str
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    before: dict[str, np.ndarray] = field(default_factory=dict)
    stages_done: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    correct: dict[str, dict[int, dict[int, np.ndarray]]] = field(default_factory=dict)
    task_classes: list[list[int]] = field(default_factory=list)
    test_class_counts: list[list[int]] = field(default_factory=list)

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def accuracy_matrices(self) -> list[str]:
        """Names of the matrices that hold accuracies (ACC/BWT/forgetting apply), i.e. all but drift."""
        return [k for k in self.matrices if k not in SIMILARITY_MATRICES and k not in OTHER_MATRICES]

    def matrix(self, name: str) -> np.ndarray:
        if name not in self.matrices:
            self.matrices[name] = _nan_matrix(self.num_tasks)
        return self.matrices[name]

    def record(self, name: str, stage: int, task: int, value: float) -> None:
        """Store ``value`` at ``stage`` (0 = before training, else tasks learned so far)."""
        if stage == 0:
            self.before.setdefault(name, np.full(self.num_tasks, np.nan))[task] = value
        else:
            self.matrix(name)[stage - 1, task] = value

    def record_correct(self, reading: str, stage: int, task: int, correct: np.ndarray) -> None:
        """Keep which test examples of ``task`` ``reading`` got right at ``stage``; records the accuracy too."""
        correct = np.asarray(correct, dtype=bool)
        self.correct.setdefault(reading, {}).setdefault(stage, {})[task] = correct
        self.record(reading, stage, task, float(correct.mean()) if correct.size else math.nan)

    def correct_vector(self, reading: str, stage: int, task: int) -> np.ndarray | None:
        """The vector :meth:`record_correct` kept, or ``None`` (not measured, or an older results file)."""
        return self.correct.get(reading, {}).get(stage, {}).get(task)

    def summary(self, name: str = "live", stage: int | None = None) -> dict[str, float]:
        """ACC/BWT/forgetting/FWT of matrix ``name`` as of ``stage`` (default: last completed)."""
        stage = stage or self.stages_done
        return metrics.summary(self.matrix(name), stage, self.before.get(name))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "task_names": self.task_names,
            "scenario": self.scenario,
            "stages_done": self.stages_done,
            "matrices": {k: _to_json(v) for k, v in self.matrices.items()},
            "before": {k: _to_json(v) for k, v in self.before.items()},
            "timings": self.timings,
            "extra": self.extra,
            "task_classes": self.task_classes,
            "test_class_counts": self.test_class_counts,
            "correct": {reading: {str(stage): {self.task_names[j]: pack_correct(v) for j, v in sorted(tasks.items())}
                                  for stage, tasks in sorted(stages.items())}
                        for reading, stages in self.correct.items()},
        }
        if self.stages_done:
            out["summary"] = {k: {m: (None if math.isnan(v) else v) for m, v in self.summary(k).items()}
                              for k in self.accuracy_matrices()}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Results":
        names = list(d["task_names"])
        index = {name: j for j, name in enumerate(names)}
        correct = {reading: {int(stage): {index[t]: unpack_correct(v) for t, v in tasks.items()}
                             for stage, tasks in stages.items()}
                   for reading, stages in d.get("correct", {}).items()}
        return cls(
            task_names=names,
            scenario=d["scenario"],
            matrices={k: _from_json(v) for k, v in d["matrices"].items()},
            before={k: _from_json(v) for k, v in d["before"].items()},
            stages_done=int(d["stages_done"]),
            timings=dict(d.get("timings", {})),
            extra=dict(d.get("extra", {})),
            correct=correct,
            task_classes=[list(map(int, c)) for c in d.get("task_classes", [])],
            test_class_counts=[list(map(int, c)) for c in d.get("test_class_counts", [])],
        )

    def save(self, path: str | Path) -> None:
        """Write the results JSON atomically (a crash never leaves half a file)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "Results":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
