"""Sums over a batch of *per-example* squared gradients, from one batched backward pass.

For a linear layer y = x·Wᵀ + b applied to the tokens t of example n, that example's gradient
is G_n = Σ_t g_{n,t} x_{n,t}ᵀ, with g = ∂loss/∂y. The layer's input x and the gradient at its
output g both exist in an ordinary batched backward pass, so Σ_n G_n² needs no per-example
backward (Goodfellow 2015; what Opacus and BackPACK do). Likewise for LayerNorm,
∂/∂γ = Σ_t g ⊙ x̂ and ∂/∂β = Σ_t g, and for an embedding table the gradient at its output
summed per (example, row). Padding changes nothing: padded positions are masked out of
attention and pooling, so the gradient reaching them is exactly zero.

Only parameters owned by ``nn.Linear``, ``nn.LayerNorm`` and ``nn.Embedding`` modules that run
once per forward are covered (every parameter of a BERT-family classifier);
:func:`covers` says whether a model qualifies, and :class:`Unsupported` is raised when a forward
breaks the assumptions (a module called twice), so callers can fall back to one backward per
example.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = (nn.Linear, nn.LayerNorm, nn.Embedding)


class Unsupported(RuntimeError):
    """The forward pass did something the batched computation cannot take apart per example."""


def owners(model: nn.Module, names: list[str]) -> dict[str, tuple[nn.Module, str]] | None:
    """``{parameter name: (module, "weight" | "bias")}``, or ``None`` where a parameter is not covered."""
    modules = dict(model.named_modules())
    out = {}
    for name in names:
        module_name, _, attr = name.rpartition(".")
        module = modules.get(module_name)
        if not isinstance(module, SUPPORTED) or attr not in ("weight", "bias"):
            return None
        if isinstance(module, nn.Embedding) and (attr != "weight" or module.max_norm is not None):
            return None  # max_norm renormalises the table inside the forward
        if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) != 1:
            return None
        out[name] = (module, attr)
    return out


def covers(model: nn.Module, names: list[str]) -> bool:
    """Whether :class:`SquaredGradientSums` can measure every parameter in ``names`` of ``model``
    (it also needs at least one embedding table, whose outputs root the backward pass)."""
    return owners(model, names) is not None and any(isinstance(m, nn.Embedding) for m in model.modules())


class SquaredGradientSums:
    """Adds Σ_n (∂ loss_n / ∂θ)² over each batch to ``sums``, for the parameters ``names``.

    ``loss`` must be the *sum* of per-example losses, and the batch must hold independent
    examples (no batch norm, eval mode). Use as a context manager around the batches::

        with SquaredGradientSums(model, names) as squares:
            for batch in batches:
                loss = per_example_losses(model(batch)).sum()
                squares.backward(loss, batch_size=len(batch))  # after the forward, inside the block
        squares.sums  # {name: tensor shaped like the parameter}

    Parameters' own ``.grad`` are neither used nor touched; the forward must run inside the block.
    """

    def __init__(self, model: nn.Module, names: list[str]):
        found = owners(model, names)
        if found is None or not covers(model, names):
            raise Unsupported("a parameter is not owned by a Linear, LayerNorm or Embedding module")
        self.model = model
        self.sums = {n: torch.zeros_like(m.weight if a == "weight" else m.bias, dtype=torch.float32)
                     for n, (m, a) in found.items()}
        self.measured: dict[nn.Module, dict[str, str]] = {}  # module -> {"weight": name, "bias": name}
        for n, (m, a) in found.items():
            self.measured.setdefault(m, {})[a] = n
        self.handles: list = []
        self.leaves: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []  # (embedding, ids, output leaf)
        self.calls: set[nn.Module] = set()
        self.batch_size = 0

    def __enter__(self) -> "SquaredGradientSums":
        for module in self.model.modules():
            if isinstance(module, nn.Embedding):
                self.handles.append(module.register_forward_hook(self._embedding_hook))
            elif module in self.measured:
                self.handles.append(module.register_forward_hook(self._layer_hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.leaves.clear()

    def start(self, batch_size: int) -> None:
        """Call before each forward pass: the number of examples in the batch."""
        self.batch_size = batch_size
        self.leaves.clear()
        self.calls.clear()

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate the summed per-example ``loss`` of the batch and add its squares."""
        if not self.leaves:
            raise Unsupported("no embedding output reached the loss")
        grads = torch.autograd.grad(loss, [leaf for _, _, leaf in self.leaves], allow_unused=True)
        for (module, ids, _), g in zip(self.leaves, grads):
            if g is not None and "weight" in self.measured.get(module, {}):
                self._add_embedding(module, ids, g)
        self.leaves.clear()

    def _once(self, module: nn.Module) -> None:
        if module in self.calls:  # two calls would need (G1 + G2)², not G1² + G2²
            raise Unsupported(f"{type(module).__name__} ran twice in one forward")
        self.calls.add(module)

    def _embedding_hook(self, module: nn.Embedding, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        self._once(module)
        ids = inputs[0]
        if output.shape[0] != self.batch_size:  # looked up once for the whole batch (BERT's position ids)
            if output.shape[0] != 1:
                raise Unsupported("an embedding output is neither per example nor shared by the batch")
            output = output.expand(self.batch_size, *output.shape[1:])
            ids = ids.expand(self.batch_size, *ids.shape[1:])
        # A leaf of its own per example, so autograd hands back each example's gradient separately.
        leaf = output.detach().contiguous().requires_grad_(True)
        self.leaves.append((module, ids, leaf))
        return leaf

    def _layer_hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._once(module)
        if inputs[0].shape[0] != self.batch_size:
            raise Unsupported(f"{type(module).__name__} input does not start with the batch dimension")
        if not output.requires_grad:  # its input does not come from the embeddings: no output gradient to read
            raise Unsupported(f"{type(module).__name__} output is not downstream of an embedding")
        output.register_hook(self._accumulator(module, inputs[0].detach()))

    def _accumulator(self, module: nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], None]:
        names = self.measured[module]
        n = self.batch_size

        def accumulate(g: torch.Tensor) -> None:
            g = g.float().reshape(n, -1, g.shape[-1])  # (examples, positions, features)
            if isinstance(module, nn.Linear):
                inp = x.float().reshape(n, -1, x.shape[-1])
                if "weight" in names:
                    total = self.sums[names["weight"]]
                    if g.shape[1] == 1:  # one position per example (the head): G_n² = (g_n²)(x_n²)ᵀ
                        total.add_(g[:, 0].pow(2).T @ inp[:, 0].pow(2))
                    else:  # one example at a time keeps G_n in cache: ~4x faster than one (n, out, in) tensor
                        for g_n, x_n in zip(g, inp):
                            per_example = g_n.T @ x_n
                            total.addcmul_(per_example, per_example)
            else:  # LayerNorm: gradients of γ and β from the normalised input
                if "weight" in names:
                    normalised = F.layer_norm(x.float(), module.normalized_shape, eps=module.eps).reshape(g.shape)
                    self.sums[names["weight"]].add_((g * normalised).sum(1).pow_(2).sum(0).view_as(module.weight))
            if "bias" in names:
                self.sums[names["bias"]].add_(g.sum(1).pow_(2).sum(0).view_as(self.sums[names["bias"]]))

        return accumulate

    def _add_embedding(self, module: nn.Embedding, ids: torch.Tensor, g: torch.Tensor) -> None:
        rows_total = module.num_embeddings
        n = self.batch_size
        example = torch.arange(n, device=ids.device).view(n, *([1] * (ids.dim() - 1))).expand_as(ids)
        keys = (example * rows_total + ids).reshape(-1)
        # A row used twice in one example contributes the sum of both positions' gradients.
        unique, inverse = torch.unique(keys, return_inverse=True)
        per_key = torch.zeros(len(unique), g.shape[-1], device=g.device).index_add_(
            0, inverse, g.reshape(-1, g.shape[-1]).float())
        rows = unique % rows_total
        if module.padding_idx is not None:  # that row never gets a gradient
            per_key[rows == module.padding_idx] = 0
        self.sums[self.measured[module]["weight"]].index_add_(0, rows, per_key.pow_(2))
