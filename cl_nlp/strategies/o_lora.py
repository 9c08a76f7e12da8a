"""O-LoRA: orthogonal low-rank adaptation per task (Wang et al., Findings of EMNLP 2023,
"Orthogonal Subspace Learning for Language Model Continual Learning").

Each task t trains a fresh LoRA adapter, ΔW_t = (alpha/r)·B_t·A_t on every targeted linear
layer, with the classifier head; earlier tasks' adapters are frozen and kept. The new adapter is
pushed to read its input through a subspace orthogonal to the earlier adapters' ones (the row
spaces of their A matrices, A ∈ R^{r×d}):

    L = CE + λ · Σ_{s<t} Σ_layers ‖A_s · A_tᵀ‖²_F

(the paper's orthogonality loss; ``norm: l1`` uses Σ|A_s·A_tᵀ| instead, what the authors' released code
computes). At inference the adapters are summed, W = W0 + Σ_s ΔW_s. Frozen adapters contribute
a constant term to every forward pass, so after each task the adapter is merged into the encoder
(peft's ``merge_and_unload``, W ← W + ΔW_t, the machinery of
:mod:`cl_nlp.strategies.lora_merge`): the same function, one matrix product per layer fewer,
and only the A matrices are kept for the penalty (strategy state, r × d per layer and task).

Not followed: the paper's T5 has no classifier head and its backbone weights besides LoRA are
frozen; here the head trains with the adapter (as in ``lora-merge``), so in class-incremental
streams the head still drifts. The paper's optional L2 term on the new adapter (λ2; its scripts set
λ2 = 0) is left out. λ defaults to 0.5, the λ1 of the authors' scripts; the rank to 8.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from cl_nlp.errors import UserError
from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.merging import lora_deltas, lora_layers
from cl_nlp.strategies.registry import register_strategy

Norm = Literal["frobenius", "l1"]


def orthogonality_penalty(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor], norm: Norm = "frobenius") -> torch.Tensor:
    """Σ_layers ‖A_old · A_newᵀ‖²_F (or Σ|·| for ``l1``), ``old[layer]`` holding earlier tasks'
    A matrices stacked by rows (so the sum runs over tasks too) and ``new[layer]`` the new A.

    Example:
        >>> a = torch.tensor([[1.0, 0.0]]); b = torch.tensor([[1.0, 1.0]])
        >>> orthogonality_penalty({"q": a}, {"q": b}).item(), orthogonality_penalty({"q": a}, {"q": a[:, [1, 0]]}).item()
        (1.0, 0.0)
    """
    total = None
    for name, a_new in new.items():
        if name not in old:
            continue
        product = old[name] @ a_new.T
        term = product.pow(2).sum() if norm == "frobenius" else product.abs().sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


@dataclass
class OLoRAOptions:
    """Options of :class:`OLoRA`."""

    r: int = field(default=8, metadata={"help": "LoRA rank of each task's adapter"})
    alpha: float = field(default=16.0, metadata={"help": "LoRA scale numerator: delta = (alpha/r)·B·A"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on the LoRA input"})
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"],
                                      metadata={"help": "encoder linear layers that get an adapter (name suffixes)"})
    lambda_: float = field(default=0.5, metadata={"help": "weight of the orthogonality penalty (paper's lambda_1)"})
    norm: Norm = field(default="frobenius", metadata={
        "help": "frobenius: sum of squares of A_old·A_newᵀ (paper); l1: sum of absolute values (authors' code)"})
    lr: float | None = field(default=1e-3, metadata={
        "help": "peak learning rate while an adapter trains (as lora-merge's); null = train.lr"})

    def __post_init__(self) -> None:
        require(self.r >= 1, f"r must be >= 1, got {self.r}")
        require(self.alpha > 0, f"alpha must be > 0, got {self.alpha}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(bool(self.target_modules), "target_modules must name at least one module, e.g. [query, value]")
        require(self.lambda_ >= 0, f"lambda must be >= 0, got {self.lambda_}")
        require(self.lr is None or self.lr > 0, f"lr must be > 0 (or null for train.lr), got {self.lr}")


class OLoRA(Strategy):
    """A LoRA adapter per task kept orthogonal to earlier tasks' adapters; adapters summed (merged).

    Example:
        >>> olora = OLoRA(OLoRAOptions(r=4), StrategyContext())
        >>> olora.subspaces
        []
    """

    options: OLoRAOptions

    def __init__(self, options: OLoRAOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or OLoRAOptions(), context)
        self.subspaces: list[dict[str, torch.Tensor]] = []  # per finished task: layer -> its A (r x d)
        self.old: dict[str, torch.Tensor] = {}  # layer -> every earlier A stacked by rows, on the model's device
        self.new: dict[str, torch.Tensor] = {}  # layer -> the training adapter's A (a live parameter)
        self.last_figures: dict[str, float] = {}

    def before_task(self, task, model: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        opts = self.options
        config = LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
                            target_modules=list(opts.target_modules), bias="none")
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5: not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            try:
                model.encoder = get_peft_model(model.encoder, config)
            except ValueError as exc:
                raise UserError(f"o-lora: {str(exc).splitlines()[0][:300]}; set strategy.target_modules to "
                                "names of the encoder's linear layers (BERT: query, key, value, dense)") from None
        self.new = {name: layer.lora_A["default"].weight for name, layer in lora_layers(model.encoder).items()}
        device = next(iter(self.new.values())).device
        self.old = {name: torch.cat([s[name] for s in self.subspaces]).to(device)
                    for name in self.new if self.subspaces and all(name in s for s in self.subspaces)}
        return model

    def learning_rate(self, task, lr: float) -> float:
        return lr if self.options.lr is None else self.options.lr

    def penalty(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.old or self.options.lambda_ == 0:
            return None
        return self.options.lambda_ * orthogonality_penalty(self.old, self.new, self.options.norm)

    def after_task(self, task, model: nn.Module) -> nn.Module:
        peft_model = model.encoder
        with torch.no_grad():
            overlap = float(orthogonality_penalty(self.old, self.new, self.options.norm)) if self.old else 0.0
            delta = lora_deltas(peft_model)
            self.subspaces.append({name: a.detach().cpu().clone() for name, a in self.new.items()})
        self.last_figures = {"o_lora/overlap": overlap,
                             "o_lora/delta_norm": float(torch.sqrt(sum(d.pow(2).sum() for d in delta.values())))}
        encoder = peft_model.merge_and_unload()  # W <- W + (alpha/r)·B·A: the sum of adapters, in the weights
        for p in encoder.parameters():  # peft froze the base; hand back a model like the one received
            p.requires_grad_(True)
        model.encoder = encoder
        self.new, self.old = {}, {}
        return model

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {"subspaces": self.subspaces}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.subspaces = [dict(s) for s in state["subspaces"]]


register_strategy("o-lora", OLoRAOptions, OLoRA)
