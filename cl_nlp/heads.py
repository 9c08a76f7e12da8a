"""Which classifier rows a prediction may use, per scenario.

One linear layer covers the stream's global label space. A boolean ``task_classes`` matrix
(tasks x classes) says which rows belong to which task. Task-incremental training and all
task-aware predictions mask the other tasks' rows to -inf, which is exactly a separate head
per task; class- and domain-incremental training use the whole layer.
"""

from __future__ import annotations

import torch

from cl_nlp.streams.task import Stream


def task_class_matrix(stream: Stream) -> torch.Tensor:
    """Bool (n_tasks, n_classes): ``[t, c]`` is True when class ``c`` belongs to task ``t``."""
    m = torch.zeros(len(stream.tasks), stream.num_classes, dtype=torch.bool)
    for t, task in enumerate(stream.tasks):
        m[t, task.class_ids] = True
    return m


def restrict_to_task(logits: torch.Tensor, task_ids: torch.Tensor, task_classes: torch.Tensor) -> torch.Tensor:
    """Logits with every class outside each example's own task set to -inf (task-aware)."""
    allowed = task_classes.to(logits.device)[task_ids.to(logits.device)]
    return logits.masked_fill(~allowed, float("-inf"))


def training_logits(logits: torch.Tensor, task_ids: torch.Tensor, task_classes: torch.Tensor, scenario: str) -> torch.Tensor:
    """The logits the loss sees: per-task heads in task-incremental streams, all classes otherwise."""
    if scenario == "task-incremental":
        return restrict_to_task(logits, task_ids, task_classes)
    return logits
