"""One forward pass over a task's test split: both readings (task-agnostic and task-aware) and the
pooled features the probes and drift measures use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from cl_nlp.batching import Examples, collate, eval_batches
from cl_nlp.heads import restrict_to_task
from cl_nlp.models import pool
from cl_nlp.runtime.distributed import process_layout, sum_arrays_across_processes


@dataclass
class TaskPredictions:
    """Predictions on one task's test split, in the split's order."""

    labels: np.ndarray
    agnostic: np.ndarray  # argmax over every class of the head
    aware: np.ndarray     # argmax over the task's own classes
    features: np.ndarray  # pooled last-layer features (for probes and drift)
    layer_features: np.ndarray | None = None  # (hidden states, n, dims), when asked for

    def accuracy(self, which: str) -> float:
        return float(np.mean(self.correct(which))) if len(self.labels) else float("nan")

    def correct(self, which: str) -> np.ndarray:
        """Per example: was the ``agnostic`` / ``aware`` prediction right?"""
        return (self.agnostic if which == "agnostic" else self.aware) == self.labels


@torch.inference_mode()
def predict(model: nn.Module, examples: Examples, task_classes: torch.Tensor, pad_id: int,
            batch_size: int = 128, device: torch.device | str = "cpu", hidden_layers: bool = False,
            sort_by_length: bool = True, across_processes: bool = False,
            on_batch: Callable[[int], None] | None = None) -> TaskPredictions:
    """One forward pass per example gives both readings (task-agnostic and task-aware) and features.

    Batches are sorted by length (less padding; ``sort_by_length=False`` keeps the split's order,
    for benchmarks); results are put back in the split's order.
    With ``hidden_layers`` every hidden state is pooled too (the model's pooling).
    With ``across_processes`` (data-parallel runs; every process must call it) the batches are
    dealt out to the processes in turn and the results summed back: each batch is computed as a
    single process computes it, so every process gets a single process's predictions.
    ``on_batch(n)`` is told the size of each batch as it starts (progress displays).
    """
    was_training = model.training
    model.eval()
    n = len(examples)
    agnostic = np.zeros(n, np.int64)
    aware = np.zeros(n, np.int64)
    features: np.ndarray | None = None
    layers: np.ndarray | None = None
    pooling = getattr(model, "pooling", "mean")
    index, count = process_layout() if across_processes else (0, 1)
    for k, (idx, part) in enumerate(eval_batches(examples, batch_size, sort_by_length)):
        if on_batch is not None:
            on_batch(len(idx))
        if k % count != index:
            continue  # another process's batch
        batch = {k: v.to(device) for k, v in collate(part, pad_id).items()}
        extra = {"output_hidden_states": True} if hidden_layers else {}
        out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), **extra)
        logits = out.logits.float()
        agnostic[idx] = logits.argmax(-1).cpu().numpy()
        aware[idx] = restrict_to_task(logits, batch["task_ids"], task_classes).argmax(-1).cpu().numpy()
        feats = out.features.float().cpu().numpy()
        if features is None:
            features = np.zeros((n, feats.shape[1]), np.float32)
        features[idx] = feats
        if hidden_layers:
            pooled = torch.stack([pool(h, batch["attention_mask"], pooling) for h in out.hidden_states]).float().cpu().numpy()
            if layers is None:
                layers = np.zeros((pooled.shape[0], n, pooled.shape[2]), np.float32)
            layers[:, idx] = pooled
    model.train(was_training)
    if count > 1:
        summed = sum_arrays_across_processes({"agnostic": agnostic, "aware": aware, "features": features, "layers": layers})
        agnostic, aware, features, layers = summed["agnostic"], summed["aware"], summed.get("features"), summed.get("layers")
    return TaskPredictions(examples.labels.copy(), agnostic, aware,
                           features if features is not None else np.zeros((0, 0), np.float32), layers)


__all__ = ["TaskPredictions", "predict"]
