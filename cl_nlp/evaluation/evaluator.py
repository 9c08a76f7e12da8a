"""Accuracy of a model on each task's test split, filled into the run's matrices per stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cl_nlp.batching import Examples, collate, eval_batches
from cl_nlp.heads import restrict_to_task
from cl_nlp.evaluation.results import Results


@dataclass
class TaskPredictions:
    """Predictions on one task's test split, in the split's order."""

    labels: np.ndarray
    agnostic: np.ndarray  # argmax over every class of the head
    aware: np.ndarray     # argmax over the task's own classes
    features: np.ndarray  # pooled last-layer features (for probes and drift)

    def accuracy(self, which: str) -> float:
        pred = self.agnostic if which == "agnostic" else self.aware
        return float(np.mean(pred == self.labels)) if len(self.labels) else float("nan")


@torch.inference_mode()
def predict(model: nn.Module, examples: Examples, task_classes: torch.Tensor, pad_id: int,
            batch_size: int = 128, device: torch.device | str = "cpu") -> TaskPredictions:
    """One forward pass per example gives both readings (task-agnostic and task-aware) and features.

    Batches are sorted by length (less padding); results are put back in the split's order.
    """
    was_training = model.training
    model.eval()
    n = len(examples)
    agnostic = np.zeros(n, np.int64)
    aware = np.zeros(n, np.int64)
    features: np.ndarray | None = None
    for idx, part in eval_batches(examples, batch_size):
        batch = {k: v.to(device) for k, v in collate(part, pad_id).items()}
        out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        logits = out.logits.float()
        agnostic[idx] = logits.argmax(-1).cpu().numpy()
        aware[idx] = restrict_to_task(logits, batch["task_ids"], task_classes).argmax(-1).cpu().numpy()
        feats = out.features.float().cpu().numpy()
        if features is None:
            features = np.zeros((n, feats.shape[1]), np.float32)
        features[idx] = feats
    model.train(was_training)
    return TaskPredictions(examples.labels.copy(), agnostic, aware, features if features is not None else np.zeros((0, 0)))


class Evaluator:
    """Measures every task that should be measured at a stage and records it in :class:`Results`.

    At stage 0 (before training) every task is measured, giving ``b_j``. After stage ``k``, the
    tasks learned so far are measured, plus unseen ones per ``future_tasks`` (``next`` is what
    forward transfer needs).
    """

    def __init__(self, results: Results, tests: list[Examples], task_classes: torch.Tensor, pad_id: int,
                 batch_size: int = 128, future_tasks: str = "next", device: torch.device | str = "cpu"):
        self.results = results
        self.tests = tests
        self.task_classes = task_classes
        self.pad_id = pad_id
        self.batch_size = batch_size
        self.future_tasks = future_tasks
        self.device = device
        self.last_predictions: dict[int, TaskPredictions] = {}

    def tasks_at(self, stage: int) -> list[int]:
        n = len(self.tests)
        if stage == 0 or self.future_tasks == "all":
            return list(range(n))
        upto = stage + 1 if self.future_tasks == "next" else stage
        return list(range(min(upto, n)))

    def evaluate(self, model: nn.Module, stage: int) -> dict[int, TaskPredictions]:
        """Fill stage ``stage`` of the live and task-aware matrices; return the predictions."""
        live = "aware" if self.results.scenario == "task-incremental" else "agnostic"
        out = {}
        for j in self.tasks_at(stage):
            p = predict(model, self.tests[j], self.task_classes, self.pad_id, self.batch_size, self.device)
            self.results.record("live", stage, j, p.accuracy(live))
            self.results.record("task_aware", stage, j, p.accuracy("aware"))
            out[j] = p
        self.last_predictions = out
        return out
