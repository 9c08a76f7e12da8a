"""Layer freezing: fine-tune with the embeddings and the lowest ``layers`` encoder layers frozen.

Freezing the embeddings and the lower layers is reported to recover much of the "spurious"
forgetting of sequential fine-tuning (Zheng et al., ICLR 2025, "Spurious Forgetting in Continual
Learning of Language Models"): the lower layers carry general lexical and syntactic features a new
task need not change, and frozen they stay exactly as pretraining left them. For
θ = (θ_emb, θ_1 … θ_L, θ_head) the update is plain fine-tuning of

    θ_{k+1} … θ_L, θ_head          with θ_emb, θ_1 … θ_k fixed (requires_grad = False)

so the trainer's optimiser never sees the frozen weights (no gradient, no momentum, no weight
decay) and their backward pass is not computed.

Default ``layers: null`` freezes the lower half of the encoder's layers (3 of MiniLM's 6, 6 of
BERT-base's 12). Reasons: Wu et al. (ICLR 2022) find the best probe layer after sequential
fine-tuning mid-network, i.e. the damage that matters sits in the upper half; the top half stays
free to learn what a task needs beyond pretraining (the TREC question types of
``docs/streams.md`` gain 20+ probe points from fine-tuning); and half the encoder's backward pass
is saved. It is a starting point, not a tuned value: choose ``layers`` on validation data.

Layers are found generically: the encoder's ``embeddings`` module and the one ``nn.ModuleList``
holding ``config.num_hidden_layers`` blocks (BERT, RoBERTa, DistilBERT, ELECTRA, DeBERTa, MPNet,
XLM-R...). An encoder where either cannot be found is refused with a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cl_nlp.errors import UserError
from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.registry import register_strategy


@dataclass
class FreezeOptions:
    """Options of :class:`Freeze`."""

    layers: int | None = field(default=None, metadata={
        "help": "lowest encoder layers frozen besides the embeddings; null = half the encoder's layers (3 of MiniLM's 6)"})
    embeddings: bool = field(default=True, metadata={"help": "also freeze the embeddings (word, position, type, LayerNorm)"})

    def __post_init__(self) -> None:
        require(self.layers is None or self.layers >= 0, f"layers must be >= 0 (or null for half), got {self.layers}")


def encoder_parts(encoder: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """(embeddings module, list of the transformer layers) of a BERT-family encoder.

    Raises:
        UserError: the encoder has no unique ``embeddings`` module or no unique list of
            ``config.num_hidden_layers`` layers (e.g. ALBERT's shared layer groups, T5's ``block``).
    """
    config = getattr(encoder, "config", None)
    n_layers = getattr(config, "num_hidden_layers", None)
    kind = type(encoder).__name__
    embeddings = [m for name, m in encoder.named_modules() if name.rsplit(".", 1)[-1] == "embeddings"]
    stacks = [m for m in encoder.modules() if isinstance(m, nn.ModuleList) and n_layers and len(m) == n_layers]
    if n_layers is None or len(embeddings) != 1 or len(stacks) != 1:
        raise UserError(f"freeze: cannot find the embeddings and the {n_layers} layers of a {kind} "
                        f"({len(embeddings)} 'embeddings' modules, {len(stacks)} lists of {n_layers} layers); "
                        "the freeze strategy supports BERT-family encoders (BERT, RoBERTa, DistilBERT, MiniLM, ...)")
    return embeddings[0], stacks[0]


def freeze_lower(encoder: nn.Module, layers: int | None, embeddings: bool = True) -> tuple[int, int]:
    """Set ``requires_grad = False`` on the embeddings and the lowest ``layers`` layers (``None`` = half).

    Returns:
        (layers frozen, parameters frozen) — the counts the strategy reports.
    """
    emb, stack = encoder_parts(encoder)
    k = len(stack) // 2 if layers is None else layers
    if k > len(stack):
        raise UserError(f"freeze: layers={k} but the encoder has only {len(stack)} layers; "
                        f"set strategy.layers to at most {len(stack)}")
    modules = ([emb] if embeddings else []) + list(stack[:k])
    frozen = 0
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
            frozen += p.numel()
    return k, frozen


class Freeze(Strategy):
    """Fine-tuning with the embeddings and the lowest layers of the encoder frozen.

    Example:
        >>> freeze = Freeze(FreezeOptions(layers=2), StrategyContext())
        >>> freeze.options.layers
        2
    """

    options: FreezeOptions

    def __init__(self, options: FreezeOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or FreezeOptions(), context)
        self.last_figures: dict[str, float] = {}

    def before_task(self, task, model: nn.Module) -> nn.Module:
        # Idempotent, so a resumed run (a fresh model with restored weights) freezes the same weights.
        layers, frozen = freeze_lower(model.encoder, self.options.layers, self.options.embeddings)
        total = sum(p.numel() for p in model.parameters())
        self.last_figures = {"freeze/layers": float(layers), "freeze/frozen_share": frozen / total}
        return model

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing learned: which weights are frozen follows from the options


register_strategy("freeze", FreezeOptions, Freeze)
