"""Memory Aware Synapses, MAS (Aljundi, Babiloni, Elhoseiny, Rohrbach & Tuytelaars, ECCV 2018).

After each task, the importance Ω of every parameter is the mean over a sample of the task's
training examples of |∂‖z‖²₂/∂θ| — how much the squared norm of the output (the logits of the
classes learned so far) moves with that parameter; no labels are used
(:mod:`cl_nlp.strategies.ewc.sensitivity`). Later tasks pay

    λ · Σ_i Ω_i (θ_i − θ*_i)²

with Ω accumulated over the tasks learned (Ω ← Ω + Ω_new, the paper's "accumulated importance")
and θ* the parameters at the end of the latest task. That is EWC's online quadratic with γ = 1 and
the Fisher replaced by Ω, so it runs on the same machinery
(:class:`~cl_nlp.strategies.ewc.quadratic.QuadraticAnchor`): its gradient 2λ·Ω·(θ − θ*) is added
to the task loss's gradients in ``adjust_gradients``, before clipping, with foreach ops. Note the
weight: MAS writes λ·Σ Ω(θ − θ*)² (no ½), so a MAS λ is half an EWC λ of the same strength.
Avalanche's MAS averages old and new importance (Ω ← α·Ω + (1 − α)·Ω_new, α = 0.5 by default) and
takes mini-batch gradients; its λ values do not transfer one to one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.ewc.quadratic import QuadraticAnchor
from cl_nlp.strategies.ewc.sensitivity import mas_importance
from cl_nlp.strategies.registry import register_strategy


@dataclass
class MASOptions:
    """Options of :class:`MAS`."""

    lambda_: float = field(default=1.0, metadata={"help": "penalty weight λ in λ·Σ Ω(θ−θ*)² (MAS's convention: no ½)"})
    samples: int = field(default=128, metadata={"help": "training examples per task the importance averages (no labels used)"})
    include_head: bool = field(default=True, metadata={"help": "anchor the classifier head too, not only the encoder"})

    def __post_init__(self) -> None:
        require(self.lambda_ >= 0, f"lambda must be >= 0, got {self.lambda_}")
        require(self.samples >= 1, f"samples must be >= 1, got {self.samples}")


class MAS(Strategy):
    """Memory Aware Synapses: a quadratic penalty weighted by how sensitive the output's norm is to each parameter.

    Example:
        >>> mas = MAS(MASOptions(lambda_=1.0, samples=64), StrategyContext())
        >>> bool(mas.anchor)  # nothing anchored before the first task ends
        False
    """

    options: MASOptions

    def __init__(self, options: MASOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or MASOptions(), context)
        self.anchor = QuadraticAnchor()
        self.tasks_done = 0
        self.last_figures: dict[str, float] = {}
        self._penalty_sum: torch.Tensor | None = None
        self._penalty_steps = 0

    def parameter_names(self, model: nn.Module) -> list[str]:
        return [n for n, p in model.named_parameters()
                if p.requires_grad and (self.options.include_head or not n.startswith("head."))]

    def before_task(self, task, model: nn.Module) -> nn.Module:
        self._penalty_sum, self._penalty_steps = None, 0
        return model

    def adjust_gradients(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
        """Add 2λ·Ω·(θ − θ*), the gradient of λ·Σ Ω(θ − θ*)², to the gradients."""
        if not self.anchor or self.options.lambda_ == 0:
            return
        value = self.anchor.add_gradient(dict(model.named_parameters()), 2 * self.options.lambda_)
        self._penalty_sum = value if self._penalty_sum is None else self._penalty_sum + value
        self._penalty_steps += 1

    def penalty_value(self, model: nn.Module) -> torch.Tensor | None:
        """λ·Σ Ω(θ − θ*)² at ``model``'s weights (``None`` before the first task ends)."""
        return self.anchor.penalty(dict(model.named_parameters()), 2 * self.options.lambda_) if self.anchor else None

    def after_task(self, task, model: nn.Module) -> nn.Module:
        opts, ctx = self.options, self.context
        t0 = time.perf_counter()
        rng = np.random.default_rng([ctx.seed, task.index, 1])
        n = min(opts.samples, len(task.train))
        sample = task.train.subset(np.sort(rng.choice(len(task.train), size=n, replace=False)))
        omega = mas_importance(model, sample, self.parameter_names(model), pad_id=ctx.pad_id,
                               task_classes=ctx.task_classes, upto=task.index, scenario=ctx.scenario)
        params = dict(model.named_parameters())
        self.anchor.absorb(omega, {n: params[n] for n in omega}, mode="online", gamma=1.0)
        self.tasks_done += 1
        self.last_figures = {
            "mas/importance_mass": sum(float(o.sum()) for o in omega.values()),  # Σ_i Ω_i of this task
            "mas/importance_max": max(float(o.max()) for o in omega.values()),
            "mas/importance_seconds": time.perf_counter() - t0,
            "mas/anchored_values": float(sum(a.weight.numel() for a in self.anchor.params.values())),
        }
        if self._penalty_steps:
            self.last_figures["mas/penalty_mean"] = float(self._penalty_sum) / self._penalty_steps
        return model

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor.state_dict(), "tasks_done": self.tasks_done}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.anchor.load_state_dict(state["anchor"])
        self.tasks_done = int(state["tasks_done"])


register_strategy("mas", MASOptions, MAS)
