"""MAS's parameter importance: how sensitive the squared norm of the output is to each parameter.

Aljundi et al. (ECCV 2018, "Memory Aware Synapses", Eq. 2-4):

    Ω_i = (1/N) Σ_n | ∂ ‖z(x_n; θ)‖²₂ / ∂θ_i |

a mean of *per-example* absolute gradients, needing no labels. z is the output of the learned
function before the softmax (the paper's choice for classification networks): here the logits of
the classes learned so far — the classes of tasks 0 .. k in class- and domain-incremental streams,
each example's own task head in task-incremental ones (the paper's multi-head setting), so rows of
classes not yet learned add nothing.

Per-example absolute gradients come from the same batched machinery as EWC's Fisher
(:class:`~cl_nlp.strategies.ewc.per_example.AbsoluteGradientSums`: layer inputs times output
gradients, no per-example backward), with the model in eval mode; where that does not cover the
model, one backward pass per example. Avalanche and the authors' code take |gradient of a
mini-batch's summed norm| instead, which is smaller wherever examples' gradients disagree in sign.
Under data parallelism each process takes its share of the examples and the sums are added up.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from cl_nlp.batching import Examples, collate
from cl_nlp.runtime.distributed import process_layout, share, sum_across_processes
from cl_nlp.strategies.ewc.per_example import AbsoluteGradientSums, Unsupported


def output_mask(task_ids: torch.Tensor, task_classes: torch.Tensor | None, upto: int, scenario: str,
                num_classes: int) -> torch.Tensor:
    """Bool (examples, classes): the logits whose squared norm MAS differentiates, per example."""
    n = len(task_ids)
    if task_classes is None:
        return torch.ones(n, num_classes, dtype=torch.bool, device=task_ids.device)
    classes = task_classes.to(task_ids.device)
    if scenario == "task-incremental":
        return classes[task_ids]
    return classes[: upto + 1].any(0).expand(n, -1)


def squared_output_norms(model: nn.Module, batch: dict[str, torch.Tensor], task_classes: torch.Tensor | None,
                         upto: int, scenario: str) -> torch.Tensor:
    """‖z_n‖²₂ per example of ``batch`` (the masked logits' squared norm), shape (examples,)."""
    logits = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).logits.float()
    mask = output_mask(batch["task_ids"], task_classes, upto, scenario, logits.shape[-1])
    return logits.masked_fill(~mask, 0.0).pow(2).sum(-1)


def mas_importance(model: nn.Module, examples: Examples, names: Iterable[str], *, pad_id: int,
                   task_classes: torch.Tensor | None = None, upto: int = 0, scenario: str = "class-incremental",
                   batch_size: int | None = 32) -> dict[str, torch.Tensor]:
    """Ω for the parameters ``names`` of ``model``, averaged over ``examples``.

    Args:
        model: a :class:`~cl_nlp.models.ContinualClassifier` (anything returning ``.logits``).
        examples: the (unlabelled use of) examples to average over.
        names: parameter names to measure.
        pad_id: padding token id.
        task_classes: bool (tasks x classes); ``None`` = every class is in the output.
        upto: index of the last task learned (its classes and earlier ones form the output).
        scenario: the stream's scenario.
        batch_size: examples per batched backward pass; ``None`` = one backward pass per example.

    Returns:
        ``{name: Ω}`` shaped like each parameter, float32, on its device.
    """
    params = dict(model.named_parameters())
    names = list(names)
    mine = share(len(examples), *process_layout())
    flags = {n: p.requires_grad for n, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        sums = None
        if batch_size is not None:
            try:
                sums = _batched(model, examples, mine, names, pad_id, task_classes, upto, scenario, batch_size)
            except Unsupported:
                pass
        if sums is None:
            sums = _one_by_one(model, examples, mine, names, pad_id, task_classes, upto, scenario)
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
            p.grad = None
        model.train(was_training)
    sums = sum_across_processes(sums)
    return {n: s.mul_(1.0 / max(len(examples), 1)) for n, s in sums.items()}


def _batched(model, examples, mine, names, pad_id, task_classes, upto, scenario, batch_size):
    sums = AbsoluteGradientSums(model, names)
    device = next(model.parameters()).device
    for p in model.parameters():  # the hooks read layer inputs and output gradients, not .grad
        p.requires_grad_(False)
    lengths = np.array([len(examples.input_ids[i]) for i in mine])
    order = np.asarray(mine)[np.argsort(lengths, kind="stable")]
    with sums:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size].tolist()
            batch = {k: v.to(device) for k, v in collate(examples.subset(chunk), pad_id).items()}
            sums.start(len(chunk))
            sums.backward(squared_output_norms(model, batch, task_classes, upto, scenario).sum())
    return sums.sums


def _one_by_one(model, examples, mine, names, pad_id, task_classes, upto, scenario):
    params = dict(model.named_parameters())
    device = next(model.parameters()).device
    for n, p in params.items():
        p.requires_grad_(n in names)
    total = {n: torch.zeros_like(params[n], dtype=torch.float32) for n in names}
    for i in mine:
        batch = {k: v.to(device) for k, v in collate(examples.subset([i]), pad_id).items()}
        norm = squared_output_norms(model, batch, task_classes, upto, scenario).sum()
        grads = torch.autograd.grad(norm, [params[n] for n in names], allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                total[n].add_(g.abs())
    return total
