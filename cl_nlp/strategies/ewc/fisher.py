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

Per-example squared gradients come from one batched backward pass per ``batch_size`` examples
(:mod:`cl_nlp.strategies.ewc.per_example`: each Linear/LayerNorm/Embedding layer's input times the
gradient at its output), with the examples sorted by length so batches carry little padding.
Parameters of other module types fall back to one unpadded backward pass per example; there,
embedding tables are handled row-wise: their per-example gradient is read from the embedding
*output* and scattered onto the rows of the token ids used, so a 30k-row word-embedding table
costs a few rows per example instead of a dense 30k x d gradient. Both give the same Fisher.
"""

from __future__ import annotations

from typing import Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import Examples, collate
from cl_nlp.distributed import process_layout, share, sum_across_processes
from cl_nlp.heads import training_logits
from cl_nlp.strategies.ewc.per_example import SquaredGradientSums, Unsupported

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
                    kind: FisherKind = "empirical", generator: torch.Generator | None = None,
                    batch_size: int | None = 32) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of the parameters ``names`` of ``model``, averaged over ``examples``.

    Args:
        model: a :class:`~cl_nlp.models.ContinualClassifier` (anything returning ``.logits``).
        examples: the examples to average over.
        names: parameter names (as in ``model.named_parameters()``) to compute the Fisher of.
        pad_id: padding token id of the batches.
        task_classes: bool (tasks x classes) for the scenario's logit masking; ``None`` = all classes.
        scenario: the stream's scenario (task-incremental masks other tasks' classes).
        kind: ``empirical`` (true labels) or ``true`` (labels drawn from the model's prediction).
        generator: the random source for ``true`` labels (CPU generator; one uniform per example).
        batch_size: examples per batched backward pass; ``None`` = one backward pass per example
            (also taken where the model has parameters the batched path does not cover).

    Returns:
        ``{name: F}`` with ``F`` shaped like the parameter, on the parameter's device.

    Example:
        >>> fisher = fisher_diagonal(model, task.train.subset(range(64)), ["head.weight"], pad_id=0)  # doctest: +SKIP
    """
    params = dict(model.named_parameters())
    names = list(names)
    uniforms = torch.rand(len(examples), generator=generator, dtype=torch.float64) if kind == "true" else None
    mine = share(len(examples), *process_layout())  # all of them in a single process
    classes = task_classes.to(next(model.parameters()).device) if task_classes is not None else None
    saved_flags = {n: p.requires_grad for n, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        fisher = None
        if batch_size is not None:
            try:
                fisher = _batched(model, examples, mine, names, pad_id, classes, scenario, uniforms, batch_size)
            except Unsupported:  # a parameter it cannot see, a module run twice, ...: take the exact slow path
                pass
        if fisher is None:
            fisher = _one_by_one(model, examples, mine, names, pad_id, classes, scenario, uniforms)
    finally:
        for n, p in params.items():
            p.requires_grad_(saved_flags[n])
            p.grad = None
        model.train(was_training)
    fisher = sum_across_processes(fisher)
    scale = 1.0 / max(len(examples), 1)
    return {n: f.mul_(scale) for n, f in fisher.items()}


def _log_likelihood_terms(model, batch, classes, scenario, uniforms) -> torch.Tensor:
    """Σ over the batch of −log p(y | x): true labels, or labels drawn with ``uniforms`` (one per example)."""
    out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    logits = out.logits.float()
    if classes is not None:
        logits = training_logits(logits, batch["task_ids"], classes, scenario)
    log_probs = F.log_softmax(logits, dim=-1)
    if uniforms is not None:  # kind == "true"
        label = sample_label(log_probs.detach().exp(), uniforms.view(-1, 1).to(log_probs.device))
    else:
        label = batch["labels"]
    return F.nll_loss(log_probs, label, reduction="sum")  # squared later, so the sign does not matter


def _batched(model, examples, mine, names, pad_id, classes, scenario, uniforms, batch_size):
    squares = SquaredGradientSums(model, names)  # raises Unsupported for a parameter it cannot see
    device = next(model.parameters()).device
    for p in model.parameters():  # the hooks read layer inputs and output gradients, not .grad
        p.requires_grad_(False)
    lengths = np.array([len(examples.input_ids[i]) for i in mine])
    order = np.asarray(mine)[np.argsort(lengths, kind="stable")]  # similar lengths batch with little padding
    with squares:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size].tolist()
            batch = {k: v.to(device) for k, v in collate(examples.subset(chunk), pad_id).items()}
            squares.start(len(chunk))
            nll = _log_likelihood_terms(model, batch, classes, scenario,
                                        None if uniforms is None else uniforms[chunk])
            squares.backward(nll)
    return squares.sums


def _one_by_one(model, examples, mine, names, pad_id, classes, scenario, uniforms):
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    # Embedding weights among ``names`` go through the tap; the rest through ordinary autograd.
    tapped = {n[: -len(".weight")]: modules[n[: -len(".weight")]] for n in names
              if n.endswith(".weight") and isinstance(modules.get(n[: -len(".weight")]), nn.Embedding)}
    dense = [n for n in names if n[: -len(".weight")] not in tapped]
    fisher = {n: torch.zeros_like(params[n], dtype=torch.float32) for n in names}
    for n, p in params.items():  # only what we measure gets a gradient (tapped tables take theirs from the tap)
        p.requires_grad_(n in dense)
    tap = _EmbeddingTap(tapped)
    try:
        for i in mine:
            _accumulate_one(model, examples.subset([i]), params, dense, tap, fisher, pad_id, classes, scenario,
                            None if uniforms is None else uniforms[i:i + 1])
    finally:
        tap.remove()
    return fisher


def sample_label(probs: torch.Tensor, uniform: torch.Tensor | float) -> torch.Tensor:
    """Per row of ``probs`` (N, C), the class whose cumulative probability first exceeds that
    row's ``uniform`` (shape (N, 1), or one number): a draw from each row's distribution."""
    cumulative = probs.double().cumsum(-1)
    return (cumulative <= uniform * cumulative[..., -1:]).sum(-1).clamp_max(probs.shape[-1] - 1)


def _accumulate_one(model, example, params, dense, tap, fisher, pad_id, classes, scenario, uniform) -> None:
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in collate(example, pad_id).items()}
    nll = _log_likelihood_terms(model, batch, classes, scenario, uniform)
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
