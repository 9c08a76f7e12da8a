"""Accuracy of a model on each task's test split, filled into the run's matrices per stage.

Besides the live and task-aware accuracies, every stage can measure what the encoder itself
still holds (see :mod:`cl_nlp.evaluation.retention` for the derived numbers):

- ``probe``: a fresh linear probe per learned task on the frozen encoder's pooled last-layer
  features (the model's pooling), fitted on a fixed per-class sample of the task's training
  split — its L2 weight chosen on a validation split of that sample — and scored on its test
  split; at stage 0 the same probe on the untouched pretrained encoder gives ``before["probe"]``;
- ``ncm_probe``: a nearest-class-mean probe on the same sample and features;
- ``probe_layer<l>`` (optional, ``layerwise``): the linear probe on every hidden state
  (0 = embeddings, last = the encoder's output), and ``probe_best_layer``: the probe on the
  layer with the best validation accuracy (which layer: ``probe_best_layer_index``);
- drift between task ``j``'s test features right after learning it and now: ``cka_debiased``
  (unbiased HSIC) and ``cka`` (biased linear CKA), each with the level shuffled pairings give
  (``cka_debiased_null``, ``cka_debiased_null_hi``, ``cka_null``); ``cka_pretrained`` and
  ``cka_debiased_pretrained``: the same against the untouched pretrained encoder's features.

Every accuracy is recorded with its per-example correctness (``Results.correct``), which the
intervals need. Test features come from the same forward pass as the accuracies; only the
probe sample needs one extra pass per learned task and stage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from cl_nlp.batching import Examples
from cl_nlp.evaluation.cka import cka_null, debiased_cka, linear_cka
from cl_nlp.evaluation.class_report import per_class_scores
from cl_nlp.evaluation.intervals import wilson_interval
from cl_nlp.evaluation.metric_keys import METRIC_PREFIX, PROBE_SECONDS
from cl_nlp.evaluation.ncm import NCMReadout, ncm_stage_metrics
from cl_nlp.evaluation.prediction import TaskPredictions, predict
from cl_nlp.evaluation.probing import L2_GRID, NearestClassMean, fit_probe_selected, per_class_sample
from cl_nlp.evaluation.results import Results
from cl_nlp.evaluation.retention_overall import assess_run
from cl_nlp.run_context import RunContext


@dataclass
class ProbeSettings:
    """How the probes are fitted (see :class:`cl_nlp.config.EvalConfig`)."""

    per_class: int = 30       # training examples per class in each task's fixed probe sample
    l2: float | None = None   # L2 weight on standardised features; None = chosen on validation from L2_GRID
    layerwise: bool = False   # also probe every hidden state
    seed: int = 0             # which examples form the probe samples (and their validation split)

    @property
    def grid(self) -> tuple[float, ...]:
        return L2_GRID if self.l2 is None else (float(self.l2),)


# Shuffled pairings behind the drift's null level: enough for a mean and a 95th percentile.
CKA_PERMUTATIONS = 50


class Evaluator:
    """Measures every task that should be measured at a stage and records it in :class:`Results`.

    At stage 0 (before training) every task is measured, giving ``b_j``. After stage ``k``, the
    tasks learned so far are measured, plus unseen ones per ``future_tasks`` (``next`` is what
    forward transfer needs). Probes run when ``trains`` (each task's training examples) and
    ``probes`` are given; drift (CKA) is always measured, since it reuses the test features.

    Example:
        >>> evaluator = Evaluator(results, tests, context, trains=trains,  # doctest: +SKIP
        ...                       probes=ProbeSettings(per_class=30))
        >>> evaluator.evaluate(model, stage=1)  # doctest: +SKIP
    """

    def __init__(self, results: Results, tests: list[Examples], context: RunContext, batch_size: int = 128,
                 future_tasks: str = "next", *, trains: list[Examples] | None = None,
                 probes: ProbeSettings | None = None, class_names: list[str] | None = None,
                 progress: Callable[[int, str, int], None] | None = None, ncm: bool = False):
        self.results = results
        self.progress = progress  # progress(stage, what, examples): told of every batch (cl_nlp.progress)
        self.tests = tests
        self.context = context
        # Read from the run's context: both readings mask with the same matrix the trainer trains with.
        self.task_classes = context.task_classes
        self.pad_id = context.pad_id
        self.device = context.device
        self.batch_size = batch_size
        self.future_tasks = future_tasks
        self.probes = probes if trains is not None else None
        self.probe_samples: list[Examples] | None = None
        if self.probes is not None:
            self.probe_samples = [t.subset(per_class_sample(t.labels, self.probes.per_class, self.probes.seed + j))
                                  for j, t in enumerate(trains)]
        if class_names is not None:
            results.extra["class_names"] = list(class_names)
        if not results.task_classes:  # what chance levels need (reference_levels)
            results.task_classes = [np.flatnonzero(row.cpu().numpy()).tolist() for row in self.task_classes]
            results.test_class_counts = [[int(np.sum(t.labels == c)) for c in classes]
                                         for t, classes in zip(tests, results.task_classes)]
        # NCM readout (cl_nlp.evaluation.ncm): prototypes from the probes' per-class sample settings.
        settings = probes or ProbeSettings()
        self.ncm = (NCMReadout(trains, self.task_classes, results.scenario, settings.per_class, settings.seed)
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
                        hidden_layers=layerwise and probed, across_processes=True,
                        on_batch=self._progress(stage, f"{self.results.task_names[j]} test"))
            self.results.record_correct("live", stage, j, p.correct(live))
            self.results.record_correct("task_aware", stage, j, p.correct("aware"))
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
            self.results.extra["retention"] = jsonable(assess_run(self.results, stage).to_dict())
        self.results.stages_done = max(self.results.stages_done, stage)
        self.last_predictions = out
        return out

    def _progress(self, stage: int, what: str) -> Callable[[int], None] | None:
        return None if self.progress is None else (lambda n: self.progress(stage, what, n))

    def record_drift(self, stage: int, out: dict[int, TaskPredictions]) -> None:
        """CKA (debiased and biased) of each learned task's test features now against right after
        learning it — with the level shuffled pairings give — and against the pretrained encoder."""
        if stage == 0:
            self.pretrained_features = {j: p.features for j, p in out.items()}
            return
        self.learned_features[stage - 1] = out[stage - 1].features
        record = self.results.record
        for j in range(stage):
            now = out[j].features
            if j in self.learned_features:
                then = self.learned_features[j]
                record("cka", stage, j, linear_cka(then, now))
                record("cka_debiased", stage, j, debiased_cka(then, now))
                null = cka_null(then, now, CKA_PERMUTATIONS, seed=stage * 1000 + j)
                record("cka_null", stage, j, null.linear_mean)
                record("cka_debiased_null", stage, j, null.debiased_mean)
                record("cka_debiased_null_hi", stage, j, null.debiased_hi)
            if j in self.pretrained_features:
                record("cka_pretrained", stage, j, linear_cka(self.pretrained_features[j], now))
                record("cka_debiased_pretrained", stage, j, debiased_cka(self.pretrained_features[j], now))

    def record_probes(self, model: nn.Module, stage: int, out: dict[int, TaskPredictions]) -> None:
        """Probe every task learned so far (every task at stage 0, the pretrained baseline)."""
        assert self.probes is not None and self.probe_samples is not None
        results, settings = self.results, self.probes
        chosen = results.extra.setdefault("probe_l2", {}).setdefault(str(stage), {})
        for j in (range(len(self.tests)) if stage == 0 else range(stage)):
            sample = predict(model, self.probe_samples[j], self.task_classes, self.pad_id, self.batch_size,
                             self.device, hidden_layers=settings.layerwise, across_processes=True,
                             on_batch=self._progress(stage, f"{results.task_names[j]} probe"))
            test, seed = out[j], settings.seed + j
            fitted = fit_probe_selected(sample.features, sample.labels, settings.grid, seed)
            results.record_correct("probe", stage, j, fitted.probe.predict(test.features) == test.labels)
            chosen[results.task_names[j]] = fitted.l2
            ncm = NearestClassMean.fit(sample.features, sample.labels)
            results.record_correct("ncm_probe", stage, j, ncm.predict(test.features) == test.labels)
            if settings.layerwise and sample.layer_features is not None and test.layer_features is not None:
                best: tuple[float, int, np.ndarray] | None = None
                for layer in range(len(sample.layer_features)):
                    fit = fit_probe_selected(sample.layer_features[layer], sample.labels, settings.grid, seed)
                    correct = fit.probe.predict(test.layer_features[layer]) == test.labels
                    results.record(f"probe_layer{layer}", stage, j, float(correct.mean()))
                    score = -np.inf if np.isnan(fit.validation_accuracy) else fit.validation_accuracy
                    if best is None or score >= best[0]:  # ties: the later layer
                        best = (score, layer, correct)
                assert best is not None
                results.record_correct("probe_best_layer", stage, j, best[2])
                results.record("probe_best_layer_index", stage, j, float(best[1]))

    def sample_features(self, model: nn.Module, examples: Examples) -> np.ndarray:
        """Pooled last-layer features of ``examples`` (what the NCM readout averages into prototypes)."""
        return predict(model, examples, self.task_classes, self.pad_id, self.batch_size, self.device,
                       across_processes=True).features

    def stage_metrics(self, stage: int) -> dict[str, float]:
        """Per-stage MLflow metrics of the retention question: ``probe_acc/<task>`` with
        ``probe_acc_lo/<task>`` and ``probe_acc_hi/<task>`` (95% Wilson), the same ``_lo``/``_hi``
        for ``acc`` and ``task_aware_acc``, ``cka_debiased/<task>``, ..."""
        results = self.results
        out: dict[str, float] = {}
        for name in results.matrices:
            prefix = METRIC_PREFIX.get(name, name)
            for j in range(stage):
                task = results.task_names[j]
                if name not in ("live", "task_aware"):  # those two are logged by the trainer as acc/*, task_aware_acc/*
                    out[f"{prefix}/{task}"] = float(results.matrices[name][stage - 1, j])
                correct = results.correct_vector(name, stage, j)
                if correct is not None and correct.size:
                    lo, hi = wilson_interval(int(correct.sum()), correct.size)
                    out[f"{prefix}_lo/{task}"], out[f"{prefix}_hi/{task}"] = float(lo), float(hi)
        if "probe" in results.matrices:
            summary = results.summary("probe", stage)
            out.update({"probe_acc_avg": summary["acc"], "probe_bwt": summary["bwt"],
                        "probe_forgetting": summary["forgetting"]})
            retention = results.extra.get("retention", {}).get("aggregates", {})
            for key in ("recoverable_share", "live_change", "probe_change", "readout_loss"):
                e = retention.get(key) or {}
                out[key] = _num(e.get("value"))
                out[key + "_lo"], out[key + "_hi"] = _num(e.get("lo")), _num(e.get("hi"))
            out[PROBE_SECONDS] = results.timings.get(f"probe_seconds/{results.task_names[stage - 1]}", math.nan)
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
