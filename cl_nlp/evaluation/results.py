"""All matrices of a run, filled stage by stage, and their JSON form (the results file)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cl_nlp.evaluation import metrics


# Matrices of representation similarity (linear CKA), not accuracies: no ACC/BWT summary.
SIMILARITY_MATRICES = ("cka", "cka_pretrained")


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
    encoder's probe), optional ``probe_layer<l>``, and the drift matrices ``cka`` and
    ``cka_pretrained`` (similarities, not accuracies; see :mod:`cl_nlp.evaluation.evaluator`).
    """

    task_names: list[str]
    scenario: str
    matrices: dict[str, np.ndarray] = field(default_factory=dict)
    before: dict[str, np.ndarray] = field(default_factory=dict)
    stages_done: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def accuracy_matrices(self) -> list[str]:
        """Names of the matrices that hold accuracies (ACC/BWT/forgetting apply), i.e. all but drift."""
        return [k for k in self.matrices if k not in SIMILARITY_MATRICES]

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

    def summary(self, name: str = "live", stage: int | None = None) -> dict[str, float]:
        """ACC/BWT/forgetting/FWT of matrix ``name`` as of ``stage`` (default: last completed)."""
        stage = stage or self.stages_done
        return metrics.summary(self.matrix(name), stage, self.before.get(name))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_names": self.task_names,
            "scenario": self.scenario,
            "stages_done": self.stages_done,
            "matrices": {k: _to_json(v) for k, v in self.matrices.items()},
            "before": {k: _to_json(v) for k, v in self.before.items()},
            "timings": self.timings,
            "extra": self.extra,
        }
        if self.stages_done:
            out["summary"] = {k: {m: (None if math.isnan(v) else v) for m, v in self.summary(k).items()}
                              for k in self.accuracy_matrices()}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Results":
        return cls(
            task_names=list(d["task_names"]),
            scenario=d["scenario"],
            matrices={k: _from_json(v) for k, v in d["matrices"].items()},
            before={k: _from_json(v) for k, v in d["before"].items()},
            stages_done=int(d["stages_done"]),
            timings=dict(d.get("timings", {})),
            extra=dict(d.get("extra", {})),
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
