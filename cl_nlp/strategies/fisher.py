"""The diagonal Fisher information of a classifier, from per-example gradients.

Convention (the textbook one, e.g. Martens 2020; van de Ven 2025 compares the variants):

    F_i = (1/N) Σ_n (∂ log p(y_n | x_n; θ) / ∂θ_i)²

a mean of *per-example* squared gradients over N examples sampled from the task's training
split, with the model in eval mode (no dropout). ``empirical`` takes y_n = the true label;
``true`` draws y_n ~ p(y | x_n; θ) once per example (an unbiased one-sample estimate of the
expectation under the model). Avalanche instead squares *mini-batch* gradients, which shrinks
the Fisher by roughly the batch size wherever per-example gradients disagree, so its λ values do
not transfer to this one.

Under data parallelism each process takes its share of the examples and the sums are added up
across processes (:mod:`cl_nlp.distributed`), so every process ends with the Fisher a single
process computes on the same examples. For the same reason ``true`` labels are drawn by inverse
CDF from one uniform number per example, all drawn up front: the label of example n does not
depend on which process handles it.

Per-example gradients need one backward pass per example. Each example runs unpadded (so it is
exactly its own gradient), and embedding tables are handled row-wise: their per-example gradient
is read from the embedding *output* and scattered onto the rows of the token ids used, so a
30k-row word-embedding table costs a few rows per example instead of a dense 30k x d gradient.
"""

from __future__ import annotations

from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import Examples, collate
from cl_nlp.distributed import process_layout, share, sum_across_processes
from cl_nlp.heads import training_logits

FisherKind = Literal["empirical", "true"]


class _EmbeddingTap:
    """Detaches each embedding output into a leaf, so its gradient can be scattered onto rows."""

    def __init__(self, modules: dict[str, nn.Embedding]):
        self.modules = modules
        self.captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name: str):
        def hook(module: nn.Embedding, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            leaf = output.detach().requires_grad_(True)
            self.captured[name] = (inputs[0].reshape(-1), leaf)
            return leaf
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def fisher_diagonal(model: nn.Module, examples: Examples, names: Iterable[str], *, pad_id: int,
                    task_classes: torch.Tensor | None = None, scenario: str = "class-incremental",
                    kind: FisherKind = "empirical", generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of the parameters ``names`` of ``model``, averaged over ``examples``.

    Args:
        model: a :class:`~cl_nlp.models.ContinualClassifier` (anything returning ``.logits``).
        examples: the examples to average over (one backward pass each).
        names: parameter names (as in ``model.named_parameters()``) to compute the Fisher of.
        pad_id: padding token id (single examples need none; kept for the collate contract).
        task_classes: bool (tasks x classes) for the scenario's logit masking; ``None`` = all classes.
        scenario: the stream's scenario (task-incremental masks other tasks' classes).
        kind: ``empirical`` (true labels) or ``true`` (labels drawn from the model's prediction).
        generator: the random source for ``true`` labels (CPU generator; one uniform per example).

    Returns:
        ``{name: F}`` with ``F`` shaped like the parameter, on the parameter's device.

    Example:
        >>> fisher = fisher_diagonal(model, task.train.subset(range(64)), ["head.weight"], pad_id=0)  # doctest: +SKIP
    """
    params = dict(model.named_parameters())
    names = list(names)
    modules = dict(model.named_modules())
    # Embedding weights among ``names`` go through the tap; the rest through ordinary autograd.
    tapped = {n[: -len(".weight")]: modules[n[: -len(".weight")]] for n in names
              if n.endswith(".weight") and isinstance(modules.get(n[: -len(".weight")]), nn.Embedding)}
    dense = [n for n in names if n[: -len(".weight")] not in tapped]
    fisher = {n: torch.zeros_like(params[n], dtype=torch.float32) for n in names}
    saved_flags = {n: p.requires_grad for n, p in params.items()}
    was_training = model.training
    for n, p in params.items():  # only what we measure gets a gradient (tapped tables take theirs from the tap)
        p.requires_grad_(n in dense)
    tap = _EmbeddingTap(tapped)
    model.eval()
    classes = task_classes.to(next(model.parameters()).device) if task_classes is not None else None
    uniforms = torch.rand(len(examples), generator=generator, dtype=torch.float64) if kind == "true" else None
    try:
        for i in share(len(examples), *process_layout()):  # all of them in a single process
            _accumulate_one(model, examples.subset([i]), params, dense, tap, fisher, pad_id, classes, scenario,
                            None if uniforms is None else float(uniforms[i]))
    finally:
        tap.remove()
        for n, p in params.items():
            p.requires_grad_(saved_flags[n])
            p.grad = None
        model.train(was_training)
    fisher = sum_across_processes(fisher)
    scale = 1.0 / max(len(examples), 1)
    return {n: f.mul_(scale) for n, f in fisher.items()}


def sample_label(probs: torch.Tensor, uniform: float) -> torch.Tensor:
    """The class whose cumulative probability first exceeds ``uniform`` (a draw from ``probs``, shape (1, C))."""
    cumulative = probs.double().cumsum(-1)
    return (cumulative <= uniform * cumulative[..., -1:]).sum(-1).clamp_max(probs.shape[-1] - 1)


def _accumulate_one(model, example, params, dense, tap, fisher, pad_id, classes, scenario, uniform) -> None:
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in collate(example, pad_id).items()}
    out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    logits = out.logits.float()
    if classes is not None:
        logits = training_logits(logits, batch["task_ids"], classes, scenario)
    log_probs = F.log_softmax(logits, dim=-1)
    if uniform is not None:  # kind == "true"
        label = sample_label(log_probs.detach().exp(), uniform)
    else:
        label = batch["labels"]
    nll = F.nll_loss(log_probs, label)  # squared, so the sign of log p does not matter
    leaves = {name: leaf for name, (_, leaf) in tap.captured.items()}
    grads = torch.autograd.grad(nll, [params[n] for n in dense] + list(leaves.values()), allow_unused=True)
    dense_grads = grads[: len(dense)]
    torch._foreach_addcmul_([fisher[n] for n, g in zip(dense, dense_grads) if g is not None],
                            [g for g in dense_grads if g is not None], [g for g in dense_grads if g is not None])
    for (name, leaf_grad) in zip(leaves, grads[len(dense):]):
        if leaf_grad is None:
            continue
        ids, _ = tap.captured[name]
        weight = fisher[f"{name}.weight"]
        # A token used twice in one example contributes the sum of both positions' gradients.
        rows, inverse = torch.unique(ids, return_inverse=True)
        per_row = torch.zeros(len(rows), weight.shape[1], device=weight.device).index_add_(
            0, inverse, leaf_grad.reshape(-1, weight.shape[1]).float())
        weight.index_add_(0, rows, per_row.pow(2))
    tap.captured.clear()
