"""Learning without Forgetting (Li & Hoiem, ECCV 2016 / TPAMI 2017).

The teacher is the model frozen (a deep copy, eval mode, no gradients) at the end of the previous
task. On every batch of the current task the loss is

    L = CE(z, y) + α·T²·KL( softmax(z_old / T) ‖ softmax(z / T) )

with z the student's logits from the trainer's own forward pass (``output.all_logits``: no second
student forward) and z_old the teacher's logits on the same inputs, both restricted to the old
model's classes: the classes of the tasks learned before the current one. The KL is averaged over
the batch's examples; T² keeps the soft targets' gradient on the scale of the hard ones (Hinton et
al. 2015). Li & Hoiem write the term as a cross-entropy against the teacher's soft targets; that
differs from the KL by the teacher's entropy, a constant, so the gradients are the same.

Per scenario: class-incremental — one softmax over the union of the old tasks' classes (the old
model's output layer). Domain-incremental — the tasks share one label set, so the old model's
classes are those of the tasks seen before. Task-incremental — Li & Hoiem's multi-head setting:
one KL per old task, each over that task's own classes (its head), summed over the old tasks; the
current examples' own task head is trained by the cross-entropy only.

Resume: the checkpoint after task k is written after ``after_task``, so the restored model *is*
the teacher for task k + 1: ``load_state_dict`` rebuilds the teacher as a copy of it, and checks a
fingerprint (SHA-256) of the teacher's weights saved in the state (refusing, with one line, a model that is
not the one the teacher was taken from).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.errors import UserError
from cl_nlp.options import require
from cl_nlp.strategies.base import ForwardOutput, Strategy, StrategyContext, task_loss
from cl_nlp.strategies.registry import register_strategy


@dataclass
class LwFOptions:
    """Options of :class:`LwF`."""

    alpha: float = field(default=1.0, metadata={"help": "weight α of the distillation term α·T²·KL (Li & Hoiem's λ_o)"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature T of teacher and student (Li & Hoiem: 2)"})

    def __post_init__(self) -> None:
        require(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")


def distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T²·KL(softmax(teacher/T) ‖ softmax(student/T)) per example, over the columns given (N, C) -> (N,)."""
    log_p_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
    log_p_student = F.log_softmax(student.float() / temperature, dim=-1)
    return temperature ** 2 * (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)


def fingerprint(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in order: equal exactly when the weights are bit-identical."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class LwF(Strategy):
    """Learning without Forgetting: distil the previous task's model into the current one on the new inputs.

    Example:
        >>> lwf = LwF(LwFOptions(alpha=1.0, temperature=2.0), StrategyContext())
        >>> lwf.teacher is None  # no teacher before the first task ends
        True
    """

    options: LwFOptions

    def __init__(self, options: LwFOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or LwFOptions(), context)
        self.teacher: nn.Module | None = None
        self.tasks_done = 0  # the teacher knows tasks 0 .. tasks_done - 1
        self.teacher_fingerprint: str | None = None
        self._distill_sum: torch.Tensor | None = None  # summed on the device: no host sync per step
        self._steps = 0
        self.last_figures: dict[str, float] = {}

    def old_class_groups(self, device: torch.device) -> list[torch.Tensor]:
        """Column indices the distillation runs over: one group (the old classes), or one per old task (task-incremental)."""
        ctx = self.context
        if ctx.task_classes is None:
            return [torch.arange(ctx.num_classes, device=device)]
        old = ctx.task_classes[: self.tasks_done].to(device)
        if ctx.scenario == "task-incremental":
            return [row.nonzero().view(-1) for row in old]
        return [old.any(0).nonzero().view(-1)]

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], output: ForwardOutput) -> torch.Tensor:
        loss = task_loss(output, batch)
        if self.teacher is None or self.options.alpha == 0:
            return loss
        with torch.no_grad():
            old = self.teacher(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).logits.float()
        term = sum(distillation(output.all_logits[:, cols], old[:, cols], self.options.temperature).mean()
                   for cols in self.old_class_groups(old.device))
        term = self.options.alpha * term
        self._distill_sum = term.detach() if self._distill_sum is None else self._distill_sum + term.detach()
        self._steps += 1
        return loss + term

    def before_task(self, task, model: nn.Module) -> nn.Module:
        self._distill_sum, self._steps = None, 0
        if self.teacher is not None:
            self.teacher.to(next(model.parameters()).device)
        return model

    def after_task(self, task, model: nn.Module) -> nn.Module:
        self.last_figures = {"lwf/old_classes": float(sum(len(c) for c in self.old_class_groups(torch.device("cpu"))))
                             if self.teacher is not None else 0.0}
        if self._steps:
            self.last_figures["lwf/distillation_mean"] = float(self._distill_sum) / self._steps
        self.tasks_done = task.index + 1
        self.teacher = frozen_copy(model)
        self.teacher_fingerprint = fingerprint(self.teacher)
        return model

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {"tasks_done": self.tasks_done, "teacher_fingerprint": self.teacher_fingerprint}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.tasks_done = int(state["tasks_done"])
        self.teacher_fingerprint = state["teacher_fingerprint"]
        if self.teacher_fingerprint is None:
            self.teacher = None
            return
        self.teacher = frozen_copy(model)
        if fingerprint(self.teacher) != self.teacher_fingerprint:
            raise UserError("lwf: the restored model is not the model the teacher was taken from (weights differ); "
                            "resume from the checkpoint folder written with this strategy state")


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode (no dropout) whose parameters take no gradient."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


register_strategy("lwf", LwFOptions, LwF)
