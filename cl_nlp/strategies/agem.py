"""Averaged Gradient Episodic Memory, A-GEM (Chaudhry, Ranzato, Rohrbach & Elhoseiny, ICLR 2019).

An episodic memory keeps examples of the tasks learned so far (the shared replay buffer, filled
after each task; reservoir or class-balanced selection). On every step, after the current batch's
backward pass and before clipping and the optimiser step, a memory batch gives the reference
gradient g_ref = ∇θ CE(memory batch), and the batch's gradient g is projected when it would
increase the memory loss:

    if g·g_ref < 0:   g ← g − (g·g_ref / g_ref·g_ref) · g_ref

over all trainable parameters together (one dot product over the whole parameter vector). g_ref is
computed with ``torch.autograd.grad``, so the current batch's ``p.grad`` is untouched until the
projection edits it. The memory batch runs through the model as the training batch does (training
mode, the scenario's logit mask), and is drawn from the buffer's own seeded generator.

Data parallelism: each process takes its slice of the (identical) memory batch; the slices'
reference gradients are averaged across processes, so every process projects the same averaged
batch gradient onto the same g_ref and the replicas stay equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import collate
from cl_nlp.heads import training_logits
from cl_nlp.options import require
from cl_nlp.runtime.distributed import process_layout, shard, sum_across_processes
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.buffer import ReplayBuffer, buffer_figures
from cl_nlp.strategies.registry import register_strategy


@dataclass
class AGEMOptions:
    """Options of :class:`AGEM`."""

    size: int = field(default=1000, metadata={"help": "examples the episodic memory holds, over all past tasks"})
    memory_batch: int = field(default=16, metadata={"help": "memory examples the reference gradient is taken on, each step"})
    selection: Literal["reservoir", "class_balanced"] = field(
        default="reservoir", metadata={"help": "how the memory keeps examples: reservoir, or class-balanced (CBRS)"})

    def __post_init__(self) -> None:
        require(self.size >= 1, f"size must be >= 1, got {self.size}")
        require(self.memory_batch >= 1, f"memory_batch must be >= 1, got {self.memory_batch}")


def project(grads: list[torch.Tensor], refs: list[torch.Tensor]) -> torch.Tensor:
    """A-GEM's projection of ``grads`` against ``refs``, in place on ``grads`` (``refs`` is used as scratch).

    Returns whether it projected (a 0-d bool tensor; no host sync).
    """
    dot = torch.zeros((), dtype=torch.float32, device=grads[0].device)
    ref_sq = torch.zeros_like(dot)
    for g, r in zip(grads, refs):
        dot += torch.dot(g.reshape(-1).float(), r.reshape(-1).float())
        ref_sq += torch.dot(r.reshape(-1).float(), r.reshape(-1).float())
    conflict = dot < 0
    coefficient = torch.where(conflict, dot / ref_sq.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(dot))
    torch._foreach_mul_(refs, coefficient)
    torch._foreach_sub_(grads, refs)
    return conflict


class AGEM(Strategy):
    """A-GEM: project each step's gradient so the loss on an episodic memory of earlier tasks does not rise.

    Example:
        >>> agem = AGEM(AGEMOptions(size=200, memory_batch=16), StrategyContext())
        >>> len(agem.buffer)
        0
    """

    options: AGEMOptions

    def __init__(self, options: AGEMOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or AGEMOptions(), context)
        self.buffer = ReplayBuffer(self.options.size, self.options.selection, self.context.seed)
        self.task_names: dict[int, str] = {}
        self._projected: torch.Tensor | None = None
        self._steps = 0

    def before_task(self, task, model: nn.Module) -> nn.Module:
        self._projected, self._steps = None, 0
        return model

    def reference_gradient(self, model: nn.Module, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """∇θ of the mean cross-entropy on one memory batch (averaged over processes), one tensor per parameter."""
        ctx = self.context
        rank, count = process_layout()
        memory, weight = shard(self.buffer.sample(self.options.memory_batch), rank, count)
        device = params[0].device
        batch = {k: v.to(device) for k, v in collate(memory, ctx.pad_id).items()}
        logits = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).logits.float()
        if ctx.task_classes is not None:
            logits = training_logits(logits, batch["task_ids"], ctx.task_classes, ctx.scenario)
        loss = F.cross_entropy(logits, batch["labels"]) * weight
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        refs = {str(i): torch.zeros_like(p) if g is None else g for i, (p, g) in enumerate(zip(params, grads))}
        if count > 1:
            refs = {k: v / count for k, v in sum_across_processes(refs).items()}
        return [refs[str(i)] for i in range(len(params))]

    def adjust_gradients(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
        if not len(self.buffer):
            return
        params = [p for p in model.parameters() if p.requires_grad]
        refs = self.reference_gradient(model, params)
        for p in params:
            if p.grad is None:  # a parameter the current batch did not reach: its g is 0
                p.grad = torch.zeros_like(p)
        conflict = project([p.grad for p in params], refs)
        self._projected = conflict.float() if self._projected is None else self._projected + conflict.float()
        self._steps += 1

    def after_task(self, task, model: nn.Module) -> nn.Module:
        order = self.buffer.rng.permutation(len(task.train))  # a split is often sorted by class
        self.buffer.add(task.train.subset(order))
        self.task_names[task.index] = task.name
        return model

    def figures(self) -> dict[str, float]:
        out = buffer_figures(self.buffer, self.task_names, "agem")
        if self._steps:  # the share of the last task's steps whose gradient was projected
            out["agem/projected_share"] = float(self._projected) / self._steps
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "task_names": {str(k): v for k, v in self.task_names.items()}}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.task_names = {int(k): v for k, v in state["task_names"].items()}


register_strategy("agem", AGEMOptions, AGEM)

