"""Experience replay with asymmetric cross-entropy, ER-ACE (Caccia, Aljundi, Asadi, Tuytelaars, Pineau &
Belilovsky, "New Insights on Reducing Abrupt Representation Change in Online Continual Learning", ICLR 2022).

Each batch holds the incoming examples and ``per_batch`` replayed ones; the loss is

    L = CE_incoming( z masked to the classes present among the incoming examples )
      + CE_replayed( z masked to the classes seen so far )

each a mean over its own rows. Masking the incoming examples' softmax to their own batch's classes
keeps them from pushing down the logits of old classes (the "abrupt representation change" at a
task switch); replayed examples see every class learned so far. "Seen so far" is the classes of
the tasks up to the current one (class-incremental; in domain-incremental streams that is the shared
label set); the scenario's own mask applies first, so in task-incremental streams every row is
further restricted to its own task's head.

Buffer: as in the paper's code, reservoir sampling over the stream of incoming batches: each
batch's incoming examples are offered to the buffer after its optimisation step (so replay starts
within the first task, and with several epochs an example is offered once per epoch). Reservoir by
default, class-balanced (CBRS) as an option.

The masks travel with the batch as ``extra["allowed_classes"]`` (bool, examples x classes) and
``extra["replayed"]``; ``extra["row_weight"]`` turns the two means into one mean over the rows, so
data-parallel slices add up to the whole batch's loss. Insertion uses the whole batch every process
draws alike, so every process stores the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import Examples
from cl_nlp.options import require
from cl_nlp.strategies.base import ForwardOutput, Strategy, StrategyContext, task_loss
from cl_nlp.strategies.buffer import ReplayBuffer, buffer_figures
from cl_nlp.strategies.registry import register_strategy


@dataclass
class ERACEOptions:
    """Options of :class:`ERACE`."""

    size: int = field(default=1000, metadata={"help": "examples the buffer holds"})
    per_batch: int = field(default=8, metadata={"help": "buffer examples added to every batch"})
    selection: Literal["reservoir", "class_balanced"] = field(
        default="reservoir", metadata={"help": "how the buffer keeps examples: reservoir (the paper's), or class-balanced (CBRS)"})

    def __post_init__(self) -> None:
        require(self.size >= 1, f"size must be >= 1, got {self.size}")
        require(self.per_batch >= 1, f"per_batch must be >= 1, got {self.per_batch}")


def with_mask(examples: Examples, allowed: np.ndarray, replayed: bool, weight: float) -> Examples:
    """``examples`` with one row of ``allowed`` classes each, the replayed flag and the row weight."""
    n = len(examples)
    extra = {"allowed_classes": np.broadcast_to(allowed, (n, len(allowed))).copy(), "replayed": np.full(n, replayed),
             "row_weight": np.full(n, weight, np.float32)}
    return Examples(examples.input_ids, examples.labels, examples.task_ids, examples.token_type_ids, extra)


class ERACE(Strategy):
    """ER-ACE: replay, with the incoming examples' cross-entropy restricted to the classes in their batch.

    Example:
        >>> ace = ERACE(ERACEOptions(size=200, per_batch=8), StrategyContext(num_classes=6))
        >>> len(ace.buffer)
        0
    """

    options: ERACEOptions

    def __init__(self, options: ERACEOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or ERACEOptions(), context)
        self.buffer = ReplayBuffer(self.options.size, self.options.selection, self.context.seed)
        self.task_names: dict[int, str] = {}

    def seen_classes(self, task_index: int) -> np.ndarray:
        """Bool (classes,): the classes of tasks 0 .. ``task_index``."""
        ctx = self.context
        if ctx.task_classes is None:
            return np.ones(ctx.num_classes, bool)
        return ctx.task_classes[: task_index + 1].any(0).cpu().numpy()

    def before_task(self, task, model: nn.Module) -> nn.Module:
        self.task_names[task.index] = task.name
        return model

    def train_batches(self, task, batches: Iterator[Examples]) -> Iterator[Examples]:
        seen = self.seen_classes(task.index)
        for batch in batches:
            present = np.zeros(self.context.num_classes, bool)
            present[np.unique(batch.labels)] = True
            replayed = self.buffer.sample(self.options.per_batch) if len(self.buffer) else None
            n = len(batch) + (0 if replayed is None else len(replayed))
            parts = [with_mask(batch, present, False, n / len(batch))]
            if replayed is not None:
                parts.append(with_mask(replayed, seen, True, n / len(replayed)))
            yield Examples.concat(parts)
            self.buffer.add(batch)  # after the step: reservoir over the incoming stream

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], output: ForwardOutput) -> torch.Tensor:
        allowed = batch.get("allowed_classes")
        if allowed is None:  # a batch not made by train_batches: plain cross-entropy
            return task_loss(output, batch)
        logits = output.logits.masked_fill(~allowed, float("-inf"))
        per_row = F.cross_entropy(logits, batch["labels"], reduction="none")
        return (per_row * batch["row_weight"]).mean()

    def figures(self) -> dict[str, float]:
        return buffer_figures(self.buffer, self.task_names, "er_ace")

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "task_names": {str(k): v for k, v in self.task_names.items()}}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.task_names = {int(k): v for k, v in state["task_names"].items()}


register_strategy("er-ace", ERACEOptions, ERACE)
