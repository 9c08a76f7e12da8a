"""The cl-nlp classifier as the module Avalanche expects: one input tensor in, logits out.

Avalanche calls ``model(x)`` (or ``model(x, task_labels)`` for multi-task modules) and treats the
result as logits. :class:`TextClassifierModule` unpacks the ``(batch, 3, width)`` text tensor of
:mod:`cl_nlp.avalanche.benchmark`, trims it to the batch's longest sequence (dynamic padding),
and returns the logits of the wrapped :class:`~cl_nlp.models.ContinualClassifier`, whose
parameters it shares — cl-nlp's evaluators keep reading the same classifier.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch
from torch import nn

from cl_nlp.avalanche.benchmark import trim_padding

# Finite rather than -inf: LwF's and DER's distillation terms multiply probabilities by logits,
# and 0 * -inf is NaN; exp(-1e9) is exactly 0 all the same.
MASKED_LOGIT = -1e9


class TextClassifierModule(nn.Module):
    """Wraps a cl-nlp classifier for Avalanche: ``forward(x) -> logits`` over all classes.

    Example:
        >>> from cl_nlp.avalanche.benchmark import text_rows  # doctest: +SKIP
        >>> module = TextClassifierModule(build_model(None, num_classes=10))  # doctest: +SKIP
        >>> module(text_rows(examples, pad_id, width=64)).shape  # doctest: +SKIP
        torch.Size([len(examples), 10])
    """

    def __init__(self, classifier: nn.Module, autocast: Callable[[], ContextManager] | None = None):
        super().__init__()
        self.classifier = classifier
        self.autocast = autocast or contextlib.nullcontext

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask, tt = trim_padding(x)
        with self.autocast():
            logits = self.classifier(ids, mask, tt).logits
        return logits.float()


def task_incremental_module(classifier: nn.Module, task_classes: torch.Tensor,
                            autocast: Callable[[], ContextManager] | None = None) -> nn.Module:
    """A multi-task Avalanche module: each example's logits outside its task's classes are masked.

    This is cl-nlp's task-incremental head (one head per task as disjoint rows of one linear
    layer); Avalanche passes the task labels because the module is a ``MultiTaskModule``.
    """
    from avalanche.models import MultiTaskModule

    class TaskIncrementalTextClassifier(TextClassifierModule, MultiTaskModule):
        def __init__(self):
            TextClassifierModule.__init__(self, classifier, autocast)  # chains to MultiTaskModule's
            self.register_buffer("task_classes", task_classes.clone(), persistent=False)

        def forward(self, x: torch.Tensor, task_labels: torch.Tensor | int | None = None) -> torch.Tensor:
            logits = TextClassifierModule.forward(self, x)
            if task_labels is None:
                return logits
            if isinstance(task_labels, int):
                task_labels = torch.full((logits.shape[0],), task_labels, dtype=torch.long)
            allowed = self.task_classes[task_labels.to(self.task_classes.device)].to(logits.device)
            return logits.masked_fill(~allowed, MASKED_LOGIT)

    return TaskIncrementalTextClassifier()


def unwrap_classifier(module: nn.Module) -> nn.Module:
    """The cl-nlp classifier inside an Avalanche module (strategies like GDumb replace the module)."""
    return getattr(module, "classifier", module)


__all__ = ["MASKED_LOGIT", "TextClassifierModule", "task_incremental_module", "unwrap_classifier"]
