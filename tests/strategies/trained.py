"""Running one task of a strategy through the real training loop (no evaluation), for strategy tests."""

from __future__ import annotations

import torch

from cl_nlp.config import TrainConfig
from cl_nlp.run_context import RunContext
from cl_nlp.tracking import Tracker
from cl_nlp.training import Trainer


def learn(strategy, model, task, task_classes: torch.Tensor, lr: float = 1e-2, epochs: int = 1,
          weight_decay: float = 0.01, scenario: str = "class-incremental"):
    """``before_task``, the trainer's optimisation loop, ``after_task``: one stage without evaluation."""
    cfg = TrainConfig(epochs=epochs, batch_size=4, lr=lr, weight_decay=weight_decay, warmup_ratio=0.0, device="cpu")
    context = RunContext(scenario, task_classes.shape[0], task_classes.shape[1], strategy.context.seed, cfg.batch_size,
                         pad_id=0, task_classes=task_classes)
    trainer = Trainer(model, strategy, evaluator=None, tracker=Tracker(), cfg=cfg, context=context)
    trainer.model = strategy.before_task(task, model)
    trainer.train_task(task)
    return strategy.after_task(task, trainer.model)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}
