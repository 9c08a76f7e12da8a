"""The strategy interface: a few hooks, each returning a value, all defaulting to plain fine-tuning.

The trainer calls, for each task of the stream::

    model = strategy.before_task(task, model)            # e.g. wrap in a LoRA adapter
    lr = strategy.learning_rate(task, train.lr)          # e.g. LoRA's larger rate
    examples = strategy.training_examples(task)          # e.g. every task so far (joint)
    batches = length-grouped batches of examples         # the LR schedule is sized from them
    for ex in strategy.train_batches(task, batches):     # e.g. mix in replayed examples
        batch = collate(ex)                              # tensors, ex.extra columns included
        output = ForwardOutput(...)                      # one forward pass: logits, all_logits, features
        loss = strategy.loss(model, batch, output)       # default: task_loss + strategy.penalty(model, batch)
        backward(loss)
        strategy.adjust_gradients(model, batch)          # e.g. EWC's λF(θ−θ*), A-GEM's projection
        clip, optimizer step
    model = strategy.after_task(task, model)             # e.g. Fisher, buffer update, merge
    figures = strategy.figures()                         # logged by the tracker

Hooks never touch the optimiser or the tracker, and none depends on another's call order: each
returns a value, except ``adjust_gradients``, whose job is to edit ``p.grad`` in place between
backward and clipping. ``state_dict``/``load_state_dict`` hold everything a resumed run needs
(tensors and JSON-able values only: checkpoints are safetensors + JSON); ``load_state_dict``
gets the restored model, so state built from it (a teacher, a projection basis) is rebuilt
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import Examples

if TYPE_CHECKING:  # pragma: no cover
    from cl_nlp.training import TaskData


@dataclass
class ForwardOutput:
    """What the trainer's one forward pass of a batch produced (float32 logits; features as the model gave them).

    Attributes:
        logits: the logits the task loss uses, (batch, classes): in task-incremental streams the
            classes outside each example's task are masked to -inf (one head per task).
        all_logits: the head's output over every class, unmasked, (batch, classes).
        features: the pooled encoder features the head reads, (batch, hidden) (under mixed
            precision in the autocast dtype).
    """

    logits: torch.Tensor
    all_logits: torch.Tensor
    features: torch.Tensor


def task_loss(output: ForwardOutput, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Plain fine-tuning's loss: the batch-mean cross-entropy of ``output.logits`` against the labels."""
    return F.cross_entropy(output.logits, batch["labels"])


@dataclass
class NoOptions:
    """A strategy without options."""


class Strategy:
    """Base class: plain sequential fine-tuning. Override only the hooks you need.

    Example:
        >>> import torch
        >>> class L2(Strategy):
        ...     def penalty(self, model, batch):
        ...         return 1e-4 * sum(p.pow(2).sum() for p in model.parameters())
        >>> class LabelSmoothing(Strategy):
        ...     def loss(self, model, batch, output):
        ...         return F.cross_entropy(output.logits, batch["labels"], label_smoothing=0.1)
    """

    def __init__(self, options: Any = None, context: "StrategyContext | None" = None):
        self.options = options if options is not None else NoOptions()
        self.context = context or StrategyContext()

    def before_task(self, task: "TaskData", model: nn.Module) -> nn.Module:
        """Called before training on ``task``; returns the model to train (may wrap ``model``)."""
        return model

    def learning_rate(self, task: "TaskData", lr: float) -> float:
        """The peak learning rate for ``task``'s fresh optimiser, given the run's ``train.lr``;
        default: ``lr`` unchanged. (The trainer builds the optimiser; a strategy only names the rate.)"""
        return lr

    def training_examples(self, task: "TaskData") -> Examples:
        """The examples one epoch of ``task`` is cut into (and the step count is taken from);
        default: the task's own training split."""
        return task.train

    def train_batches(self, task: "TaskData", batches: Iterator[Examples]) -> Iterator[Examples]:
        """The batches actually trained on; default: the current task's batches unchanged."""
        return batches

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], output: ForwardOutput) -> torch.Tensor:
        """The loss to backpropagate for ``batch``, given the trainer's forward ``output`` of it.

        Default: :func:`task_loss` plus :meth:`penalty` when that is not ``None``. Override to
        replace the task loss (distillation, a masked cross-entropy, logit matching) without a
        second forward pass; ``batch`` holds the collated ``Examples.extra`` columns too.
        """
        loss = task_loss(output, batch)
        extra = self.penalty(model, batch)
        return loss if extra is None else loss + extra

    def penalty(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """An extra loss term the default :meth:`loss` adds to the task loss (``None`` = nothing)."""
        return None

    def adjust_gradients(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
        """Edit ``p.grad`` in place after backward, before clipping and the optimiser step; default: nothing.

        Under data parallelism the gradients are already averaged over processes here, so an
        edit that depends only on the model and the strategy's state keeps the replicas equal.
        """

    def after_task(self, task: "TaskData", model: nn.Module) -> nn.Module:
        """Called after training on ``task``; returns the model for evaluation and the next task."""
        return model

    def figures(self) -> dict[str, float]:
        """Strategy-specific numbers to log after each task (e.g. buffer fill, Fisher mass)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Tensors and JSON-able values needed to resume (no arbitrary objects)."""
        return {}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        """Restore what :meth:`state_dict` returned; ``model`` is the restored model (weights already loaded)."""


@dataclass
class StrategyContext:
    """What the run tells a strategy at construction: the scenario, sizes, seed, device, and
    what a strategy needs to run the model on its own (EWC's Fisher): the padding id and the
    task-to-classes matrix that :func:`cl_nlp.heads.training_logits` masks with."""

    scenario: str = "class-incremental"
    num_tasks: int = 1
    num_classes: int = 2
    seed: int = 0
    batch_size: int = 16
    device: torch.device = torch.device("cpu")
    pad_id: int = 0
    task_classes: torch.Tensor | None = None  # bool (tasks x classes); None = every class in every task
