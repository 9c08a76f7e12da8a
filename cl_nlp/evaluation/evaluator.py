"""Accuracy of a model on each task's test split, filled into the run's matrices per stage.

Besides the live and task-aware accuracies, every stage can measure what the encoder itself
still holds (see :mod:`cl_nlp.evaluation.retention` for the derived numbers):

- ``probe``: a fresh linear probe per learned task on the frozen encoder's pooled last-layer
  features (the model's pooling), fitted on a fixed per-class sample of the task's training
  split and scored on its test split; at stage 0 the same probe on the untouched pretrained
  encoder gives ``before["probe"]``;
- ``probe_layer<l>`` (optional, ``layerwise``): the same probe on every hidden state
  (0 = embeddings, last = the encoder's output);
- ``cka``: linear CKA between task ``j``'s test features right after learning it and now;
  ``cka_pretrained``: the same against the untouched pretrained encoder's features.

Test features come from the same forward pass as the accuracies; only the probe sample needs
one extra pass per learned task and stage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cl_nlp.batching import Examples, collate, eval_batches
from cl_nlp.distributed import process_layout, sum_arrays_across_processes
from cl_nlp.evaluation.cka import linear_cka
from cl_nlp.evaluation.ncm import NCMReadout, ncm_stage_metrics
from cl_nlp.evaluation.class_report import per_class_scores
from cl_nlp.evaluation.probing import DEFAULT_L2, per_class_sample, probe_accuracy
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention import retention_summary, task_table
from cl_nlp.heads import restrict_to_task
from cl_nlp.models import pool


@dataclass
class TaskPredictions:
    """Predictions on one task's test split, in the split's order."""

    labels: np.ndarray
    agnostic: np.ndarray  # argmax over every class of the head
    aware: np.ndarray     # argmax over the task's own classes
    features: np.ndarray  # pooled last-layer features (for probes and drift)
    layer_features: np.ndarray | None = None  # (hidden states, n, dims), when asked for

    def accuracy(self, which: str) -> float:
        pred = self.agnostic if which == "agnostic" else self.aware
        return float(np.mean(pred == self.labels)) if len(self.labels) else float("nan")


@torch.inference_mode()
def predict(model: nn.Module, examples: Examples, task_classes: torch.Tensor, pad_id: int,
            batch_size: int = 128, device: torch.device | str = "cpu", hidden_layers: bool = False,
            sort_by_length: bool = True, across_processes: bool = False) -> TaskPredictions:
    """One forward pass per example gives both readings (task-agnostic and task-aware) and features.

    Batches are sorted by length (less padding; ``sort_by_length=False`` keeps the split's order,
    for benchmarks); results are put back in the split's order.
    With ``hidden_layers`` every hidden state is pooled too (the model's pooling).
    With ``across_processes`` (data-parallel runs; every process must call it) the batches are
    dealt out to the processes in turn and the results summed back: each batch is computed as a
    single process computes it, so every process gets a single process's predictions.
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


@dataclass
class ProbeSettings:
    """How the linear probes are fitted (see :class:`cl_nlp.config.EvalConfig`)."""

    per_class: int = 30       # training examples per class in each task's fixed probe sample
    l2: float = DEFAULT_L2    # L2 weight on standardised features
    layerwise: bool = False   # also probe every hidden state
    seed: int = 0             # which examples form the probe samples


class Evaluator:
    """Measures every task that should be measured at a stage and records it in :class:`Results`.

    At stage 0 (before training) every task is measured, giving ``b_j``. After stage ``k``, the
    tasks learned so far are measured, plus unseen ones per ``future_tasks`` (``next`` is what
    forward transfer needs). Probes run when ``trains`` (each task's training examples) and
    ``probes`` are given; drift (CKA) is always measured, since it reuses the test features.

    Example:
        >>> evaluator = Evaluator(results, tests, task_classes, pad_id, trains=trains,  # doctest: +SKIP
        ...                       probes=ProbeSettings(per_class=30))
        >>> evaluator.evaluate(model, stage=1)  # doctest: +SKIP
    """

    def __init__(self, results: Results, tests: list[Examples], task_classes: torch.Tensor, pad_id: int,
                 batch_size: int = 128, future_tasks: str = "next", device: torch.device | str = "cpu", *,
                 trains: list[Examples] | None = None, probes: ProbeSettings | None = None,
                 class_names: list[str] | None = None, ncm: bool = False):
        self.results = results
        self.tests = tests
        self.task_classes = task_classes
        self.pad_id = pad_id
        self.batch_size = batch_size
        self.future_tasks = future_tasks
        self.device = device
        self.probes = probes if trains is not None else None
        self.probe_samples: list[Examples] | None = None
        if self.probes is not None:
            self.probe_samples = [t.subset(per_class_sample(t.labels, self.probes.per_class, self.probes.seed + j))
                                  for j, t in enumerate(trains)]
        if class_names is not None:
            results.extra["class_names"] = list(class_names)
        # NCM readout (cl_nlp.evaluation.ncm): prototypes from the probes' per-class sample settings.
        settings = probes or ProbeSettings()
        self.ncm = (NCMReadout(trains, task_classes, results.scenario, settings.per_class, settings.seed)
                    if ncm and trains is not None else None)
        self.last_predictions: dict[int, TaskPredictions] = {}
        # Test features kept for drift: right after each task was learned, and before any training.
        self.learned_features: dict[int, np.ndarray] = {}
        self.pretrained_features: dict[int, np.ndarray] = {}

    def tasks_at(self, stage: int) -> list[int]:
        n = len(self.tests)
        if stage == 0 or self.future_tasks == "all":
            return list(range(n))
        upto = stage + 1 if self.future_tasks == "next" else stage
        return list(range(min(upto, n)))

    def evaluate(self, model: nn.Module, stage: int) -> dict[int, TaskPredictions]:
        """Fill stage ``stage`` of every matrix; return the test predictions."""
        live = "aware" if self.results.scenario == "task-incremental" else "agnostic"
        layerwise = self.probes is not None and self.probes.layerwise
        out = {}
        for j in self.tasks_at(stage):
            probed = stage == 0 or j < stage
            p = predict(model, self.tests[j], self.task_classes, self.pad_id, self.batch_size, self.device,
                        hidden_layers=layerwise and probed, across_processes=True)
            self.results.record("live", stage, j, p.accuracy(live))
            self.results.record("task_aware", stage, j, p.accuracy("aware"))
            if 0 < stage and j < stage:
                scores = per_class_scores(p.labels, p.agnostic if live == "agnostic" else p.aware,
                                          np.flatnonzero(self.task_classes[j].cpu().numpy()))
                self.results.extra.setdefault("classification_reports", {}).setdefault(str(stage), {})[
                    self.results.task_names[j]] = scores
            out[j] = p
        t0 = time.perf_counter()
        self.record_drift(stage, out)
        if self.probes is not None:
            self.record_probes(model, stage, out)
            when = "pretrained" if stage == 0 else self.results.task_names[stage - 1]
            self.results.timings[f"probe_seconds/{when}"] = time.perf_counter() - t0
        if self.ncm is not None:  # NCM readout
            self.ncm.record(self.results, model, stage, out, self.sample_features)
        if stage > 0:
            self.results.extra["retention"] = jsonable({"summary": retention_summary(self.results, stage),
                                                        "tasks": task_table(self.results, stage)})
        self.last_predictions = out
        return out

    def record_drift(self, stage: int, out: dict[int, TaskPredictions]) -> None:
        """Linear CKA of each learned task's test features now against right-after-learning and pretrained."""
        if stage == 0:
            self.pretrained_features = {j: p.features for j, p in out.items()}
            return
        self.learned_features[stage - 1] = out[stage - 1].features
        for j in range(stage):
            now = out[j].features
            if j in self.learned_features:
                self.results.record("cka", stage, j, linear_cka(self.learned_features[j], now))
            if j in self.pretrained_features:
                self.results.record("cka_pretrained", stage, j, linear_cka(self.pretrained_features[j], now))

    def record_probes(self, model: nn.Module, stage: int, out: dict[int, TaskPredictions]) -> None:
        """Probe every task learned so far (every task at stage 0, the pretrained baseline)."""
        assert self.probes is not None and self.probe_samples is not None
        for j in (range(len(self.tests)) if stage == 0 else range(stage)):
            sample = predict(model, self.probe_samples[j], self.task_classes, self.pad_id, self.batch_size,
                             self.device, hidden_layers=self.probes.layerwise, across_processes=True)
            test = out[j]
            self.results.record("probe", stage, j, probe_accuracy(sample.features, sample.labels, test.features,
                                                                  test.labels, self.probes.l2))
            if self.probes.layerwise and sample.layer_features is not None and test.layer_features is not None:
                for layer in range(len(sample.layer_features)):
                    acc = probe_accuracy(sample.layer_features[layer], sample.labels, test.layer_features[layer],
                                         test.labels, self.probes.l2)
                    self.results.record(f"probe_layer{layer}", stage, j, acc)

    def sample_features(self, model: nn.Module, examples: Examples) -> np.ndarray:
        """Pooled last-layer features of ``examples`` (what the NCM readout averages into prototypes)."""
        return predict(model, examples, self.task_classes, self.pad_id, self.batch_size, self.device,
                       across_processes=True).features

    def stage_metrics(self, stage: int) -> dict[str, float]:
        """Per-stage MLflow metrics of the retention question: ``probe_acc/<task>``, ``cka/<task>``, ..."""
        results = self.results
        out: dict[str, float] = {}
        for name in results.matrices:
            if name in ("live", "task_aware"):
                continue  # logged by the trainer as acc/* and task_aware_acc/*
            prefix = "probe_acc" if name == "probe" else name
            for j in range(stage):
                out[f"{prefix}/{results.task_names[j]}"] = float(results.matrices[name][stage - 1, j])
        if "probe" in results.matrices:
            summary = results.summary("probe", stage)
            out.update({"probe_acc_avg": summary["acc"], "probe_bwt": summary["bwt"],
                        "probe_forgetting": summary["forgetting"]})
            retention = results.extra.get("retention", {}).get("summary", {})
            out["recoverable_share"] = _num(retention.get("recoverable_share"))
            out["time/probe_seconds"] = results.timings.get(f"probe_seconds/{results.task_names[stage - 1]}", math.nan)
        out.update(ncm_stage_metrics(results, stage))  # NCM readout: ncm_acc_avg, ncm_bwt, ncm_forgetting
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The features drift is measured against (what a resumed run needs to go on measuring it)."""
        out = {f"learned/{j}": torch.from_numpy(f) for j, f in self.learned_features.items()}
        out.update({f"pretrained/{j}": torch.from_numpy(f) for j, f in self.pretrained_features.items()})
        if self.ncm is not None:  # NCM readout: the class prototypes
            out.update(self.ncm.state_dict())
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.ncm is not None:  # NCM readout: takes its ncm/<class> entries
            state = self.ncm.load_state_dict(state)
        for key, value in state.items():
            kind, j = key.split("/")
            target = self.learned_features if kind == "learned" else self.pretrained_features
            target[int(j)] = value.cpu().numpy()


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def jsonable(value: Any) -> Any:
    """Nested dicts/lists with NaN turned into ``None`` (strict JSON, like the matrices)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
