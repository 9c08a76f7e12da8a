"""LoRA adapter deltas and how several tasks' deltas are combined into one set of weights.

A LoRA adapter on a linear layer W adds ΔW = (alpha / r)·B·A. After training, the deltas are
read off the peft modules (:func:`lora_deltas`) and either merged one after another (the
encoder keeps every task's change, in order) or kept per task and combined onto the
pretrained weights W0 by :func:`combine_deltas`:

* ``average``: W = W0 + (1/T)·Σ_t ΔW_t — a uniform merge (peft's "linear" weighted merge with
  weights 1/T, or a model soup of the task models);
* ``task_arithmetic``: W = W0 + c·Σ_t ΔW_t (Ilharco et al. 2023, task vectors), c the coefficient.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

CombineMode = Literal["average", "task_arithmetic"]
PEFT_PREFIX = "base_model.model."  # peft's path to the wrapped model's own modules


def lora_layers(peft_model: nn.Module) -> dict[str, nn.Module]:
    """The LoRA-wrapped layers of a peft model, by their name in the unwrapped model."""
    from peft.tuners.lora import LoraLayer

    return {name.removeprefix(PEFT_PREFIX): m for name, m in peft_model.named_modules() if isinstance(m, LoraLayer)}


@torch.no_grad()
def lora_deltas(peft_model: nn.Module, adapter: str = "default") -> dict[str, torch.Tensor]:
    """``{"<layer name>.weight": ΔW}``: each LoRA layer's weight change, as peft would merge it."""
    return {f"{name}.weight": m.get_delta_weight(adapter).detach().clone() for name, m in lora_layers(peft_model).items()}


def combine_deltas(deltas: list[dict[str, torch.Tensor]], mode: CombineMode, coefficient: float = 1.0) -> dict[str, torch.Tensor]:
    """One delta per weight from per-task deltas: their mean, or ``coefficient`` times their sum.

    Example:
        >>> d = [{"w": torch.tensor([2.0])}, {"w": torch.tensor([4.0])}]
        >>> combine_deltas(d, "average")["w"].item(), combine_deltas(d, "task_arithmetic", 0.5)["w"].item()
        (3.0, 3.0)
    """
    if not deltas:
        return {}
    scale = 1.0 / len(deltas) if mode == "average" else coefficient
    return {name: scale * torch.stack([d[name] for d in deltas]).sum(0) for name in deltas[0]}
