"""Classifier-head pieces that strategies install: a cosine head, and rows held fixed while a task trains.

Freezing rows of one weight matrix cannot be done with ``requires_grad`` (a flag of the whole
tensor), and zeroing their gradient is not enough under AdamW: its decoupled weight decay,
``p ← p − lr·λ·p``, moves a row whose gradient is exactly zero (``tests/strategies/test_seq_star.py``
measures it). :func:`freeze_rows` therefore reads the head's weight and bias through a
parametrization, ``W = where(frozen_row, W_frozen, W_free)``: the loss cannot reach the frozen
rows (their gradient is zero by construction), and whatever the optimiser does to the
underlying tensor's frozen rows is discarded when :func:`release_rows` writes the parametrized
value back after the task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize


class CosineHead(nn.Module):
    """Cosine classifier: ``logits = scale · normalize(x) · normalize(W)ᵀ`` (no bias term).

    It keeps ``weight`` and a zero, frozen ``bias`` under the names ``nn.Linear`` uses, so a
    checkpoint of a model with this head loads into the plain model and back.

    Example:
        >>> head = CosineHead(nn.Linear(4, 3), scale=10.0)
        >>> bool(head(torch.ones(2, 4)).abs().max() <= 10.0)
        True
    """

    def __init__(self, linear: nn.Linear, scale: float):
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(linear.weight.detach().clone())
        self.bias = nn.Parameter(torch.zeros_like(linear.bias), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))


class FixedRows(nn.Module):
    """Parametrization: rows where ``mask`` is True read the stored values, the others the tensor."""

    def __init__(self, mask: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask.view(-1, *([1] * (values.ndim - 1))), persistent=False)
        self.register_buffer("values", values.detach().clone(), persistent=False)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, self.values, tensor)


def freeze_rows(head: nn.Module, rows: torch.Tensor) -> int:
    """Hold the head's rows ``rows`` (bool per class) at their current values; returns how many."""
    rows = rows.to(head.weight.device)
    if not bool(rows.any()):
        return 0
    for name in ("weight", "bias"):
        tensor = getattr(head, name, None)
        if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
            parametrize.register_parametrization(head, name, FixedRows(rows, tensor))
    return int(rows.sum())


def release_rows(head: nn.Module) -> None:
    """Remove :func:`freeze_rows`' parametrizations, keeping the parametrized values."""
    for name in ("weight", "bias"):
        if parametrize.is_parametrized(head, name):
            parametrize.remove_parametrizations(head, name, leave_parametrized=True)
