"""Nearest-class-mean (NCM) readout: iCaRL's classification rule over the encoder's pooled features.

A readout that needs no trained head and keeps no raw examples: when a task has been learned,
each of its classes gets a prototype — the mean of its training examples' features on the
encoder *as it is right then* (Rebuffi et al. 2017, iCaRL; a prototype probe in Wu et al. 2022,
the strongest of their probes). Later, an example is assigned the class whose prototype is
nearest. With ``φ(x)`` the L2-normalised pooled feature (the model's pooling, last layer):

    μ_c = normalize( mean_{i: y_i = c} φ(x_i) )        over task t's fixed per-class sample, at stage t
    ŷ(x) = argmin_{c ∈ C} ‖φ(x) − μ_c‖₂ = argmax_{c ∈ C} φ(x)·μ_c

with C every class learned so far (class- and domain-incremental: no task id) or the example's
task's classes (task-incremental). Prototypes are never refreshed: a later drop of the ``ncm``
matrix is the encoder drifting away from the prototypes it produced, the knowledge a
prototype classifier with a fixed memory of one vector per class would lose; the probe matrix
(refitted on the current encoder at every stage) says whether the classes are still separable.

The sample is the probes' (``eval.probe_per_class`` examples per class, the same seeded
choice), so the NCM and the probe of a task read the same training examples. Cost: one forward
pass over that sample of the task just learned, per stage. Turned on by ``eval.ncm: true``;
results go to the matrix ``ncm`` (MLflow ``ncm/<task>``, ``ncm_acc_avg``; ``final/acc_ncm``...).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from cl_nlp.batching import Examples
from cl_nlp.evaluation.probing import per_class_sample
from cl_nlp.evaluation.results import Results

PredictFeatures = Callable[[torch.nn.Module, Examples], np.ndarray]  # model, examples -> pooled features (n, d)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64; an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def class_means(features: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """``{class: unit-norm mean of the unit-norm features of that class}``.

    Example:
        >>> m = class_means(np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 1.0]]), np.array([5, 7, 7]))
        >>> sorted(m), m[7].tolist()
        ([5, 7], [0.0, 1.0])
    """
    unit = unit_rows(features)
    labels = np.asarray(labels)
    return {int(c): unit_rows(unit[labels == c].mean(0, keepdims=True))[0] for c in np.unique(labels)}


def nearest_class_mean(features: np.ndarray, means: dict[int, np.ndarray], allowed: np.ndarray | None = None) -> np.ndarray:
    """The class of the nearest mean for each row of ``features`` (Euclidean, after normalising).

    ``allowed`` (bool, examples x classes) restricts each example to some classes (task-aware
    reading); classes without a mean are never predicted. Ties go to the lower class id.
    """
    classes = np.array(sorted(means), dtype=np.int64)
    if len(features) == 0 or len(classes) == 0:
        return np.full(len(features), -1, dtype=np.int64)
    scores = unit_rows(features) @ np.stack([means[c] for c in classes]).T  # cosine = 1 - squared distance / 2
    if allowed is not None:
        scores = np.where(np.asarray(allowed)[:, classes], scores, -np.inf)
    return classes[scores.argmax(1)]


class NCMReadout:
    """Class prototypes recorded as tasks are learned, and the ``ncm`` matrix they give.

    Example:
        >>> ncm = NCMReadout(trains, task_classes, "class-incremental", per_class=30, seed=0)  # doctest: +SKIP
        >>> ncm.record(results, model, stage, test_predictions, features_of)  # doctest: +SKIP
    """

    def __init__(self, trains: list[Examples], task_classes: torch.Tensor, scenario: str, per_class: int, seed: int):
        self.samples = [t.subset(per_class_sample(t.labels, per_class, seed + j)) for j, t in enumerate(trains)]
        self.task_classes = task_classes.cpu().numpy().astype(bool)
        self.scenario = scenario
        self.means: dict[int, np.ndarray] = {}

    def record(self, results: Results, model: torch.nn.Module, stage: int, tests: dict, features_of: PredictFeatures) -> None:
        """After stage ``stage``: prototypes of the task just learned, then NCM accuracy on every learned task.

        ``tests[j]`` holds task ``j``'s test ``features`` and ``labels`` (the evaluator's predictions).
        """
        if stage == 0:
            return
        t0 = time.perf_counter()
        sample = self.samples[stage - 1]
        self.means.update(class_means(features_of(model, sample), sample.labels))
        for j in range(stage):
            test = tests[j]
            allowed = None
            if self.scenario == "task-incremental":
                allowed = np.broadcast_to(self.task_classes[j], (len(test.labels), self.task_classes.shape[1]))
            predicted = nearest_class_mean(test.features, self.means, allowed)
            results.record("ncm", stage, j, float(np.mean(predicted == test.labels)) if len(test.labels) else float("nan"))
        results.timings[f"ncm_seconds/{results.task_names[stage - 1]}"] = time.perf_counter() - t0

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"ncm/{c}": torch.from_numpy(m) for c, m in self.means.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Take the ``ncm/<class>`` entries of ``state``; return the rest."""
        self.means = {int(k.split("/", 1)[1]): v.cpu().numpy() for k, v in state.items() if k.startswith("ncm/")}
        return {k: v for k, v in state.items() if not k.startswith("ncm/")}


def ncm_stage_metrics(results: Results, stage: int) -> dict[str, float]:
    """``ncm_acc_avg``, ``ncm_bwt``, ``ncm_forgetting`` as of ``stage`` (the per-task ``ncm/<task>`` come with every matrix)."""
    if "ncm" not in results.matrices:
        return {}
    summary = results.summary("ncm", stage)
    return {"ncm_acc_avg": summary["acc"], "ncm_bwt": summary["bwt"], "ncm_forgetting": summary["forgetting"]}
