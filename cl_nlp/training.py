"""The training loop: one task after another, one readable loop per task.

``Trainer(model, strategy, evaluator, tracker).fit(data)`` does, per task::

    model = strategy.before_task(...)        # the strategy may wrap the model
    fresh AdamW (fused) at strategy.learning_rate(...) + linear warm-up/decay schedule
    for each epoch, for each length-grouped batch the strategy passes on:
        output = one forward pass (scenario logits, all logits, pooled features)
        loss = strategy.loss(model, batch, output)   # default: cross-entropy + strategy.penalty(...)
        backward; strategy.adjust_gradients(...); clip; step
    model = strategy.after_task(...)
    evaluate every task due at this stage, log metrics, call the stage callbacks

Device placement and mixed precision come from Hugging Face ``accelerate``; nothing is
hand-rolled for them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from cl_nlp.allocator import keep_freed_memory
from cl_nlp.batching import Examples, collate, train_batches
from cl_nlp.config import TrainConfig
from cl_nlp.distributed import diverged, mean_across_processes, own_dropout_stream, shard
from cl_nlp.errors import UserError
from cl_nlp.evaluation.evaluator import Evaluator
from cl_nlp.heads import training_logits
from cl_nlp.strategies.base import ForwardOutput, Strategy
from cl_nlp.streams.task import Task
from cl_nlp.tracking import Tracker

LOSS_LOG_EVERY = 25  # optimisation steps between loss logs (each log is one host sync)


@dataclass
class TaskData:
    """A task with its splits tokenized once: what the loop and the strategies work on."""

    index: int
    task: Task
    train: Examples
    test: Examples

    @property
    def name(self) -> str:
        return self.task.name


@dataclass
class StageReport:
    """What one stage produced: the stage number, timings and the metrics logged."""

    stage: int
    task: str
    train_seconds: float
    eval_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite: the run stops; earlier checkpoints stay usable."""


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """Accelerator for the configured device and precision (bf16 only where the GPU supports it)."""
    cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA GPU is visible; use train.device=auto or cpu")
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if (not cpu and torch.cuda.is_bf16_supported()) else "no"
    if cpu and precision != "no":
        # bf16 matmuls on AVX2-only CPUs run ~150x slower than fp32: refuse rather than crawl.
        raise UserError(f"train.mixed_precision={precision} needs a GPU; use mixed_precision=no (or auto) on CPU")
    return Accelerator(cpu=cpu, mixed_precision=precision)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device,
                   lr: float | None = None) -> torch.optim.Optimizer:
    """AdamW over trainable parameters, no decay on biases and LayerNorm; fused where supported
    (on this project's CPUs the unfused step is ~a third of each training step). ``lr``
    (default ``cfg.lr``) is the peak rate the schedule starts from."""
    lr = cfg.lr if lr is None else lr
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, foreach=True)


class Trainer:
    """Composes model, strategy, evaluator and tracker; :meth:`fit` runs the whole stream.

    Example:
        >>> trainer = Trainer(model, strategy, evaluator, tracker, cfg, task_classes, scenario, pad_id)  # doctest: +SKIP
        >>> trainer.fit(data)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, strategy: Strategy, evaluator: Evaluator, tracker: Tracker,
                 cfg: TrainConfig, task_classes: torch.Tensor, scenario: str, pad_id: int, seed: int = 0,
                 accelerator: Accelerator | None = None, show_progress: bool | None = None):
        self.model = model
        self.strategy = strategy
        self.evaluator = evaluator
        self.tracker = tracker
        self.cfg = cfg
        self.task_classes = task_classes
        self.scenario = scenario
        self.pad_id = pad_id
        self.seed = seed
        self.accelerator = accelerator or make_accelerator(cfg)
        self.show_progress = show_progress
        self.global_step = 0
        self.stage_callbacks: list[Callable[[StageReport], None]] = []
        self.rng = np.random.default_rng(seed)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def fit(self, data: list[TaskData], start_stage: int = 0) -> list[StageReport]:
        """Train on ``data[start_stage:]`` in order; stage 0 (untrained) is measured first."""
        self.model.to(self.device)
        if start_stage == 0:
            t0 = time.perf_counter()
            self.evaluator.evaluate(self.model, 0)
            self.evaluator.results.timings["eval_before_seconds"] = time.perf_counter() - t0
        reports = []
        for task in data[start_stage:]:
            reports.append(self.learn(task, data))
        return reports

    def learn(self, task: TaskData, data: list[TaskData]) -> StageReport:
        """Train on one task, then evaluate: one stage."""
        stage = task.index + 1
        t0 = time.perf_counter()
        self.model = self.strategy.before_task(task, self.model).to(self.device)
        self.train_task(task)
        self.model = self.strategy.after_task(task, self.model).to(self.device)
        different = diverged(self.model, self.strategy)  # data parallel: replicas must stay equal
        if different:
            raise RuntimeError(f"after task {task.name} the processes hold different {', '.join(different[:3])}: "
                               f"{type(self.strategy).__name__} does not act alike on every process")
        train_seconds = time.perf_counter() - t0

        t1 = time.perf_counter()
        self.evaluator.evaluate(self.model, stage)
        eval_seconds = time.perf_counter() - t1
        results = self.evaluator.results
        results.stages_done = stage
        results.timings[f"train_seconds/{task.name}"] = train_seconds
        results.timings[f"eval_seconds/{task.name}"] = eval_seconds

        report = StageReport(stage, task.name, train_seconds, eval_seconds, self.stage_metrics(stage))
        report.metrics.update(self.evaluator.stage_metrics(stage))  # probe_acc/*, cka/*, recoverable_share
        report.metrics.update({f"strategy/{k}": v for k, v in self.strategy.figures().items()})
        report.metrics["time/train_seconds"] = train_seconds
        self.tracker.log_metrics(report.metrics, step=stage)
        for callback in self.stage_callbacks:
            callback(report)
        return report

    def stage_metrics(self, stage: int) -> dict[str, float]:
        """``acc/<task>`` for each task learned so far, and ACC/BWT/forgetting so far, per matrix."""
        results = self.evaluator.results
        out: dict[str, float] = {}
        for name, prefix in (("live", "acc"), ("task_aware", "task_aware_acc")):
            row = results.matrix(name)[stage - 1]
            for j in range(stage):
                out[f"{prefix}/{results.task_names[j]}"] = float(row[j])
            summary = results.summary(name, stage)
            suffix = "" if name == "live" else "_task_aware"
            out[f"acc_avg{suffix}"] = summary["acc"]
            out[f"bwt{suffix}"] = summary["bwt"]
            out[f"forgetting{suffix}"] = summary["forgetting"]
            out[f"fwt{suffix}"] = summary.get("fwt", float("nan"))
        return out

    def train_task(self, task: TaskData) -> None:
        """The optimisation loop of one task."""
        cfg = self.cfg
        if self.device.type == "cpu":
            keep_freed_memory()  # the 47 MB embedding gradient of each step, reused instead of re-faulted
        task_examples = self.strategy.training_examples(task)  # joint training returns every task so far
        # Data parallel: every process draws the same batches of processes x batch_size examples
        # and trains on its own slice (cl_nlp.distributed.shard); a step is one such batch.
        rank, processes = self.accelerator.process_index, self.accelerator.num_processes
        global_batch = cfg.batch_size * processes
        n_batches = math.ceil(len(task_examples) / global_batch)
        total_steps = max(1, n_batches * cfg.epochs)
        optimizer = make_optimizer(self.model, cfg, self.device, self.strategy.learning_rate(task, cfg.lr))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
        model, optimizer = self.accelerator.prepare(self.model, optimizer)
        model.train()
        forward = self.compiled(model) if cfg.compile else model
        plain = self.accelerator.unwrap_model(model)  # what the hooks see: the model, not its DDP wrapper
        running = torch.zeros((), device=self.device)
        since_log = 0
        bar = tqdm(total=total_steps, desc=f"task {task.index + 1} {task.name}", unit="step", leave=False,
                   disable=(None if self.show_progress is None else not self.show_progress)
                   if self.accelerator.is_main_process else True)
        restore_shared_rng = own_dropout_stream(self.seed, task.index)
        for epoch in range(cfg.epochs):
            batches = train_batches(task_examples, global_batch, self.rng, cfg.length_grouping)
            for examples in self.strategy.train_batches(task, batches):  # replay mixes into the whole batch
                examples, weight = shard(examples, rank, processes)
                batch = {k: v.to(self.device, non_blocking=True) for k, v in collate(examples, self.pad_id).items()}
                with self.accelerator.autocast():
                    output = self.forward_output(forward, batch)
                    loss = self.strategy.loss(plain, batch, output)
                    if weight != 1.0:  # an uneven last batch: DDP's average stays the whole batch's mean
                        loss = loss * weight
                self.accelerator.backward(loss)
                unscaled = self.accelerator.scaler is not None  # fp16: hooks and clipping see true gradients
                if unscaled:
                    self.accelerator.unscale_gradients(optimizer)
                self.strategy.adjust_gradients(plain, batch)
                if cfg.max_grad_norm is not None:
                    clip = torch.nn.utils.clip_grad_norm_ if unscaled else self.accelerator.clip_grad_norm_
                    clip(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                running += loss.detach()
                since_log += 1
                self.global_step += 1
                bar.update(1)
                if since_log == LOSS_LOG_EVERY:
                    self.log_loss(running / since_log, scheduler.get_last_lr()[0], bar)
                    running.zero_()
                    since_log = 0
        if since_log:
            self.log_loss(running / since_log, scheduler.get_last_lr()[0], bar)
        bar.close()
        restore_shared_rng()
        self.model = self.accelerator.unwrap_model(model)
        self.accelerator.free_memory()

    def forward_output(self, forward: nn.Module, batch: dict[str, torch.Tensor]) -> ForwardOutput:
        """One forward pass of ``batch``: float32 logits (scenario-masked and all), pooled features."""
        out = forward(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        all_logits = out.logits.float()
        logits = training_logits(all_logits, batch["task_ids"], self.task_classes, self.scenario)
        return ForwardOutput(logits=logits, all_logits=all_logits, features=out.features)

    def compiled(self, model: nn.Module) -> nn.Module:
        """``torch.compile(model)``, kept while the model object stays the same (no recompiling per task).

        Shapes are dynamic: batches are padded to their own longest example.
        """
        cached = getattr(self, "_compiled", None)
        if cached is None or cached[0] is not model:
            self._compiled = (model, torch.compile(model, dynamic=True))
        return self._compiled[1]

    def log_loss(self, mean_loss: torch.Tensor, lr: float, bar) -> None:
        value = float(mean_across_processes(mean_loss))  # the one host sync per LOSS_LOG_EVERY steps
        if not math.isfinite(value):
            raise NonFiniteLoss(f"training loss became {value} at step {self.global_step}; lower train.lr "
                                "(or the strategy's penalty weight)")
        bar.set_postfix(loss=f"{value:.3f}")
        self.tracker.log_metrics({"train/loss": value, "train/lr": lr}, step=self.global_step)
