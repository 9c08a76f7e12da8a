"""What one run is about, built once and handed to the trainer, the evaluator and the strategy.

Before this object the scenario, the task-to-classes matrix, the padding id and the device
travelled as separate parameters into three constructors; now they travel together, so they
cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RunContext:
    """The run's scenario, sizes, seed and device, and what running the model needs.

    Strategies read it as ``self.context`` (EWC's Fisher runs the model on its own with
    ``pad_id`` and ``task_classes``); the trainer masks its logits with ``task_classes``
    under ``scenario``; the evaluator reads both readings with the same matrix.

    Example:
        >>> context = RunContext("class-incremental", num_tasks=5, num_classes=150, seed=0)
        >>> context.scenario
        'class-incremental'
    """

    scenario: str = "class-incremental"
    num_tasks: int = 1
    num_classes: int = 2
    seed: int = 0
    batch_size: int = 16     # training examples per step and process
    device: torch.device = torch.device("cpu")
    pad_id: int = 0          # the tokenizer's padding id, for collating batches
    task_classes: torch.Tensor | None = None  # bool (tasks x classes); None = every class in every task


__all__ = ["RunContext"]
