"""Experience replay: keep a buffer of raw examples from past tasks and mix some into every batch.

The buffer holds token ids, labels and task ids (:class:`~cl_nlp.strategies.buffer.ReplayBuffer`),
so replayed examples are padded together with the new ones and need no re-tokenizing. It is
filled after each task and its contents are part of the strategy state (saved with checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import numpy as np
from torch import nn

from cl_nlp.batching import Examples
from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.buffer import ReplayBuffer
from cl_nlp.strategies.registry import register_strategy


@dataclass
class ReplayOptions:
    """Options of :class:`Replay`."""

    size: int = field(default=1000, metadata={"help": "examples the buffer holds, over all past tasks"})
    selection: Literal["reservoir", "class_balanced"] = field(
        default="reservoir", metadata={"help": "reservoir: uniform over all examples seen; class_balanced: equal per class"})
    per_batch: int = field(default=8, metadata={"help": "buffer examples added to every training batch"})

    def __post_init__(self) -> None:
        require(self.size >= 1, f"size must be >= 1, got {self.size}")
        require(self.per_batch >= 1, f"per_batch must be >= 1, got {self.per_batch}")


class Replay(Strategy):
    """Experience replay: every batch also trains on examples stored from earlier tasks.

    Example:
        >>> replay = Replay(ReplayOptions(size=500, per_batch=4), StrategyContext())
        >>> len(replay.buffer)
        0
    """

    options: ReplayOptions

    def __init__(self, options: ReplayOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or ReplayOptions(), context)
        self.buffer = ReplayBuffer(self.options.size, self.options.selection, self.context.seed)
        self.task_names: dict[int, str] = {}

    def train_batches(self, task, batches: Iterator[Examples]) -> Iterator[Examples]:
        for batch in batches:
            yield Examples.concat([batch, self.buffer.sample(self.options.per_batch)]) if len(self.buffer) else batch

    def after_task(self, task, model):
        # Offered in a random order: class-balanced selection keeps the first arrivals while it
        # has room, and a split is often sorted by class.
        order = self.buffer.rng.permutation(len(task.train))
        self.buffer.add(task.train.subset(order))
        self.task_names[task.index] = task.name
        return model

    def figures(self) -> dict[str, float]:
        counts = self.buffer.class_counts()
        if not counts:
            return {}
        out = {"replay/buffer_size": float(len(self.buffer)), "replay/classes": float(len(counts)),
               "replay/min_per_class": float(min(counts.values())), "replay/max_per_class": float(max(counts.values()))}
        tasks = np.asarray([s[2] for s in self.buffer.slots])
        for index, name in self.task_names.items():
            out[f"replay/buffer/{name}"] = float((tasks == index).sum())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "task_names": {str(k): v for k, v in self.task_names.items()}}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.task_names = {int(k): v for k, v in state["task_names"].items()}


register_strategy("replay", ReplayOptions, Replay)
