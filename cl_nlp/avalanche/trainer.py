"""Avalanche strategies on cl-nlp streams: Avalanche's training loop, cl-nlp's everything else.

:class:`AvalancheTrainer` is a :class:`~cl_nlp.training.Trainer` whose per-task optimisation
(:meth:`train_task`) is ``avalanche_strategy.train(experience)``. The stage-0 measurement, the
Evaluator after every task, the stage metrics, MLflow logging and the stage callbacks are the
Trainer's own, so an ``avalanche:*`` run's matrices, probes and verdict have the same form as any
other run's.

cl-nlp's per-task conventions are kept inside Avalanche's loop by one plugin
(:class:`ClNlpLoopPlugin`): a fresh AdamW per task (no decay on biases and LayerNorm), linear
warm-up and decay over the task's actual number of steps (replay loaders change it), gradient
clipping, and ``train/loss`` logged every ``LOSS_LOG_EVERY`` steps with the same non-finite
check. Avalanche's own epoch loss and accuracy go to the same MLflow run under ``avalanche/``
through :class:`~cl_nlp.avalanche.logger.MLflowLogger`.
"""

from __future__ import annotations

import dataclasses

import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from transformers import get_linear_schedule_with_warmup

from cl_nlp.avalanche.benchmark import benchmark_from_examples
from cl_nlp.avalanche.model import TextClassifierModule, task_incremental_module, unwrap_classifier
from cl_nlp.avalanche.strategies import AvalancheStrategy
from cl_nlp.errors import UserError
from cl_nlp.progress import training_bar
from cl_nlp.task_data import TaskData
from cl_nlp.training import LOSS_LOG_EVERY, StageReport, Trainer, make_optimizer


class ClNlpLoopPlugin(SupervisedPlugin):
    """Fresh AdamW + warm-up/decay schedule per task, gradient clipping and loss logging."""

    def __init__(self, trainer: "AvalancheTrainer"):
        super().__init__()
        self.trainer = trainer
        self.scheduler = None
        self.bar = None
        self.running = torch.zeros(())
        self.since_log = 0

    def before_training_exp(self, strategy, **kwargs) -> None:
        # After Avalanche's own optimizer update, so the fresh optimizer holds the parameters of
        # the model that will actually train (GDumb swaps in a copy of the initial model).
        strategy.optimizer = make_optimizer(strategy.model, self.trainer.cfg, strategy.device)
        self.scheduler = None

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.scheduler is not None:
            return
        cfg = self.trainer.cfg
        total = max(1, len(strategy.dataloader) * cfg.epochs)  # the loader as replay plugins left it
        self.scheduler = get_linear_schedule_with_warmup(strategy.optimizer, int(cfg.warmup_ratio * total), total)
        index = strategy.experience.current_experience
        names = getattr(getattr(self.trainer.evaluator, "results", None), "task_names", [])
        self.bar = training_bar(self.trainer, index, names[index] if index < len(names) else f"experience {index}", total)
        self.running = torch.zeros((), device=strategy.device)
        self.since_log = 0

    def after_backward(self, strategy, **kwargs) -> None:
        if self.trainer.cfg.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(strategy.model.parameters(), self.trainer.cfg.max_grad_norm)

    def after_update(self, strategy, **kwargs) -> None:
        self.scheduler.step()
        self.running += strategy.loss.detach().sum()
        self.since_log += 1
        self.trainer.global_step += 1
        self.bar.update(1)
        if self.since_log == LOSS_LOG_EVERY:
            self.flush()

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.flush()
        self.bar.close()

    def flush(self) -> None:
        if self.since_log:
            self.trainer.log_loss(self.running / self.since_log, self.scheduler.get_last_lr()[0], self.bar)
            self.running.zero_()
            self.since_log = 0


class AvalancheTrainer(Trainer):
    """Trains each task with an Avalanche strategy, then measures it exactly as :class:`Trainer` does.

    Built by :func:`cl_nlp.experiment.run_experiment` for ``avalanche:<Name>`` strategies (the
    strategy's ``trainer_cls``); the constructor is :class:`Trainer`'s.

    Example:
        >>> trainer = AvalancheTrainer(model, build_strategy("avalanche:LwF", {}, context), evaluator,
        ...                            tracker, cfg, context)  # doctest: +SKIP
        >>> trainer.fit(data)  # doctest: +SKIP
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.strategy, AvalancheStrategy):
            raise TypeError(f"AvalancheTrainer runs Avalanche strategies, got {type(self.strategy).__name__}")
        if self.accelerator.mixed_precision == "fp16":
            # Avalanche's backward is a plain loss.backward(): no gradient scaler for fp16.
            raise UserError("Avalanche strategies run in fp32 or bf16; use train.mixed_precision=no or bf16")
        self.benchmark = None
        self.avalanche = None  # the Avalanche strategy, built by fit()
        self.mlflow_logger = None

    def fit(self, data: list[TaskData], start_stage: int = 0) -> list[StageReport]:
        if start_stage:
            raise UserError("Avalanche strategies cannot resume mid-stream (their state is not saved); rerun from the start")
        self.benchmark = benchmark_from_examples([(d.train, d.test) for d in data], self.scenario, self.pad_id)
        self.avalanche = self.build_avalanche_strategy()
        return super().fit(data, start_stage)

    def avalanche_module(self) -> nn.Module:
        if self.scenario == "task-incremental":
            return task_incremental_module(self.model, self.task_classes, self.accelerator.autocast)
        return TextClassifierModule(self.model, self.accelerator.autocast)

    def build_avalanche_strategy(self):
        """The Avalanche strategy over the wrapped model, with cl-nlp's loop plugin and MLflow logger."""
        loggers = []
        uri = getattr(self.tracker, "uri", None)
        if self.tracker.run_id is not None and uri is not None:
            from cl_nlp.avalanche.logger import MLflowLogger

            self.mlflow_logger = MLflowLogger(uri, run_id=self.tracker.run_id, prefix="avalanche/",
                                              on_error=self.logging_failed)
            loggers.append(self.mlflow_logger)
        evaluator = EvaluationPlugin(loss_metrics(epoch=True), accuracy_metrics(epoch=True), loggers=loggers)
        module = self.avalanche_module()
        cfg = self.cfg
        return self.strategy.avalanche_class()(
            model=module, optimizer=make_optimizer(module, cfg, self.device), criterion=nn.CrossEntropyLoss(),
            train_mb_size=cfg.batch_size, train_epochs=cfg.epochs, eval_mb_size=cfg.batch_size,
            device=self.device, plugins=[ClNlpLoopPlugin(self)], evaluator=evaluator, eval_every=-1,
            **dataclasses.asdict(self.strategy.options))

    def logging_failed(self, exc: Exception) -> None:
        """Avalanche's metrics could not be logged: recorded like any tracking failure; training goes on."""
        if getattr(self.tracker, "error", None) is None:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.tracker.error = f"log Avalanche metrics: {first}"

    def train_task(self, task: TaskData) -> None:
        """One task = one Avalanche experience, trained by the strategy's own loop."""
        self.avalanche.train(self.benchmark.train_stream[task.index], eval_streams=[], num_workers=0)
        self.model = unwrap_classifier(self.avalanche.model)


__all__ = ["AvalancheTrainer", "ClNlpLoopPlugin"]
