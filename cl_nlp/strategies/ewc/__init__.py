"""Elastic weight consolidation (Kirkpatrick et al. 2017; online variant: Schwarz et al. 2018).

After each task the diagonal Fisher F of the task's log-likelihood is estimated on a sample of
its training split (:mod:`cl_nlp.strategies.ewc.fisher`), and later tasks pay
(λ/2)·Σ_i F_i (θ_i − θ*_i)² for moving the parameters away from where that task left them
(:mod:`cl_nlp.strategies.ewc.quadratic`). The penalty's gradient λ·F·(θ − θ*) is known in closed
form, so it is not backpropagated: ``adjust_gradients`` adds it to the task loss's gradients
before clipping, which then sees the same total gradient as backpropagating loss + penalty.

Which parameters: every trainable one, the head included. The Fisher itself decides what is
shared: in a task-incremental stream the other tasks' head rows never receive a gradient, so
their Fisher is zero and they are free; in a class-incremental stream the whole head is shared
(the softmax over all classes pushes future classes' rows down while learning task 1), so those
rows are anchored too — which is one reason EWC alone barely helps class-incremental learning.
``include_head: false`` restricts the penalty to the encoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.ewc.fisher import fisher_diagonal
from cl_nlp.strategies.ewc.quadratic import QuadraticAnchor
from cl_nlp.strategies.registry import register_strategy


@dataclass
class EWCOptions:
    """Options of :class:`EWC`."""

    lambda_: float = field(default=1000.0, metadata={"help": "penalty weight λ in (λ/2)·Σ F(θ−θ*)²"})
    fisher: Literal["empirical", "true"] = field(
        default="empirical", metadata={"help": "labels for the Fisher: true labels, or drawn from the model"})
    fisher_samples: int = field(default=128, metadata={"help": "training examples per task the Fisher averages (per-example gradients, 32 per backward pass)"})
    mode: Literal["separate", "online"] = field(
        default="separate", metadata={"help": "separate: one penalty per past task; online: one running Fisher"})
    gamma: float = field(default=1.0, metadata={"help": "online mode: F <- gamma*F + F_new"})
    include_head: bool = field(default=True, metadata={"help": "anchor the classifier head too, not only the encoder"})

    def __post_init__(self) -> None:
        require(self.lambda_ >= 0, f"lambda must be >= 0, got {self.lambda_}")
        require(self.fisher_samples >= 1, f"fisher_samples must be >= 1, got {self.fisher_samples}")
        require(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}")
        require(self.mode == "online" or self.gamma == 1.0, "gamma applies to mode=online only; set mode=online or drop gamma")


class EWC(Strategy):
    """Elastic weight consolidation: a diagonal-Fisher quadratic penalty towards earlier tasks' weights.

    Example:
        >>> ewc = EWC(EWCOptions(lambda_=100.0), StrategyContext())
        >>> ewc.penalty_value(model) is None  # nothing to protect before the first task ends  # doctest: +SKIP
        True
    """

    options: EWCOptions

    def __init__(self, options: EWCOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or EWCOptions(), context)
        self.anchor = QuadraticAnchor()
        self.tasks_done = 0
        self.last_figures: dict[str, float] = {}
        self._penalty_sum: torch.Tensor | None = None  # summed on the device: no host sync per step
        self._penalty_steps = 0

    def parameter_names(self, model: nn.Module) -> list[str]:
        """The parameters the Fisher is taken over: trainable ones, minus the head if excluded."""
        return [n for n, p in model.named_parameters()
                if p.requires_grad and (self.options.include_head or not n.startswith("head."))]

    def before_task(self, task, model: nn.Module) -> nn.Module:
        self._penalty_sum, self._penalty_steps = None, 0
        return model

    def adjust_gradients(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
        """Add λ·A·(θ − m) to the gradients (the penalty's own gradient); its value is summed for the figures."""
        if not self.anchor or self.options.lambda_ == 0:
            return
        value = self.anchor.add_gradient(dict(model.named_parameters()), self.options.lambda_)
        self._penalty_sum = value if self._penalty_sum is None else self._penalty_sum + value
        self._penalty_steps += 1

    def penalty_value(self, model: nn.Module) -> torch.Tensor | None:
        """(λ/2)·Σ A (θ − m)² + (λ/2)·c at ``model``'s weights (``None`` before the first task ends)."""
        if not self.anchor:
            return None
        return self.anchor.penalty(dict(model.named_parameters()), self.options.lambda_)

    def after_task(self, task, model: nn.Module) -> nn.Module:
        opts, ctx = self.options, self.context
        t0 = time.perf_counter()
        rng = np.random.default_rng([ctx.seed, task.index])
        n = min(opts.fisher_samples, len(task.train))
        sample = task.train.subset(np.sort(rng.choice(len(task.train), size=n, replace=False)))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        fisher = fisher_diagonal(model, sample, self.parameter_names(model), pad_id=ctx.pad_id,
                                 task_classes=ctx.task_classes, scenario=ctx.scenario, kind=opts.fisher,
                                 generator=generator)
        params = dict(model.named_parameters())
        self.anchor.absorb(fisher, {n: params[n] for n in fisher}, opts.mode, opts.gamma)
        self.tasks_done += 1
        mass = sum(float(f.sum()) for f in fisher.values())
        self.last_figures = {
            "ewc/fisher_mass": mass,  # Σ_i F_i of this task: how sharply it pins the weights
            "ewc/fisher_max": max(float(f.max()) for f in fisher.values()),
            "ewc/fisher_seconds": time.perf_counter() - t0,
            "ewc/anchored_values": float(sum(a.weight.numel() for a in self.anchor.params.values())),
        }
        if self._penalty_steps:
            self.last_figures["ewc/penalty_mean"] = float(self._penalty_sum) / self._penalty_steps
        return model

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor.state_dict(), "tasks_done": self.tasks_done}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.anchor.load_state_dict(state["anchor"])
        self.tasks_done = int(state["tasks_done"])


register_strategy("ewc", EWCOptions, EWC)
