"""Joint (cumulative) training: at each stage, train on every task seen so far.

The upper bound of a continual-learning table, and the reference for intransigence
(I_k = a*_k − R[k][k], a*_k being this strategy's accuracy on task k after stage k). Like
Avalanche's ``Cumulative``, training continues from the current model on the union of all
training splits so far; the learning-rate schedule is sized from that union, so stage k takes
about k times as long as one task.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from cl_nlp.batching import Examples
from cl_nlp.strategies.base import NoOptions, Strategy, StrategyContext
from cl_nlp.strategies.buffer import examples_from_state, examples_to_state
from cl_nlp.strategies.registry import register_strategy


class Joint(Strategy):
    """Joint training on all data seen so far (cumulative): the upper bound.

    Example:
        >>> joint = Joint(NoOptions(), StrategyContext())
        >>> joint.seen
        {}
    """

    def __init__(self, options: NoOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or NoOptions(), context)
        self.seen: dict[int, Examples] = {}  # task index -> its training split

    def training_examples(self, task) -> Examples:
        seen = {**self.seen, task.index: task.train}
        return Examples.concat([seen[i] for i in sorted(seen)])

    def after_task(self, task, model):
        self.seen[task.index] = task.train
        return model

    def figures(self) -> dict[str, float]:
        return {"joint/train_examples": float(sum(len(e) for e in self.seen.values()))} if self.seen else {}

    def state_dict(self) -> dict[str, Any]:
        return {"seen": {str(i): examples_to_state(e) for i, e in self.seen.items()}}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.seen = {int(i): examples_from_state(s) for i, s in state["seen"].items()}


register_strategy("joint", NoOptions, Joint)
