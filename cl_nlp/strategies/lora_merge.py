"""LoRA-merge: per task a fresh LoRA adapter on the encoder, trained with the head, then merged.

``merge: sequential`` (default): after each task the adapter is merged into the encoder
(W ← W + (alpha/r)·B·A, peft's ``merge_and_unload``), so the next task's adapter starts from
the merged model; the encoder drifts only within the low-rank updates of each task.

``merge: average | task_arithmetic``: every task's adapter is trained on the *pretrained*
encoder weights W0 and its delta is kept; after each task the encoder is set to W0 plus the
combination of all deltas so far (:func:`~cl_nlp.strategies.merging.combine_deltas`), which is
what is evaluated. Deltas trained from one base are what task arithmetic assumes.

Only LoRA parameters and the head are trained (embeddings, LayerNorms and the frozen base
weights stay as they are). LoRA wants a larger learning rate than full fine-tuning: at the
run's default ``train.lr`` of 1e-4 the adapters learned the default stream's tasks to only
0.08-0.40 live accuracy, at 1e-3 to 0.94-0.98, so the strategy's own ``lr`` (default 1e-3)
replaces ``train.lr`` while an adapter trains; ``lr: null`` keeps ``train.lr``.
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
from cl_nlp.strategies.merging import combine_deltas, lora_deltas, lora_layers
from cl_nlp.strategies.registry import register_strategy


@dataclass
class LoRAMergeOptions:
    """Options of :class:`LoRAMerge`."""

    r: int = field(default=8, metadata={"help": "LoRA rank"})
    alpha: float = field(default=16.0, metadata={"help": "LoRA scale numerator: delta = (alpha/r)·B·A"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on the LoRA input"})
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"],
                                      metadata={"help": "encoder linear layers that get an adapter (name suffixes)"})
    merge: Literal["sequential", "average", "task_arithmetic"] = field(
        default="sequential", metadata={"help": "sequential: merge after each task; average/task_arithmetic: combine kept deltas"})
    coefficient: float = field(default=1.0, metadata={"help": "task_arithmetic: W0 + coefficient·Σ deltas"})
    lr: float | None = field(default=1e-3, metadata={
        "help": "peak learning rate while an adapter trains (LoRA wants ~10x full fine-tuning's); null = train.lr"})

    def __post_init__(self) -> None:
        require(self.r >= 1, f"r must be >= 1, got {self.r}")
        require(self.alpha > 0, f"alpha must be > 0, got {self.alpha}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(bool(self.target_modules), "target_modules must name at least one module, e.g. [query, value]")
        require(self.lr is None or self.lr > 0, f"lr must be > 0 (or null for train.lr), got {self.lr}")
        require(self.merge == "task_arithmetic" or self.coefficient == 1.0,
                "coefficient applies to merge=task_arithmetic only")


class LoRAMerge(Strategy):
    """LoRA adapter per task on the encoder, merged into it after the task (or combined per task).

    Example:
        >>> lora = LoRAMerge(LoRAMergeOptions(r=4, merge="average"), StrategyContext())
        >>> lora.deltas
        []
    """

    options: LoRAMergeOptions

    def __init__(self, options: LoRAMergeOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or LoRAMergeOptions(), context)
        self.base: dict[str, torch.Tensor] = {}  # W0 of the adapted layers (combining modes)
        self.deltas: list[dict[str, torch.Tensor]] = []  # one per finished task (combining modes)
        self.last_figures: dict[str, float] = {}

    def before_task(self, task, model: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        opts = self.options
        config = LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
                            target_modules=list(opts.target_modules), bias="none")
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5: not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            try:
                encoder = get_peft_model(model.encoder, config)
            except ValueError as exc:  # e.g. target modules this encoder does not have
                raise UserError(f"lora-merge: {str(exc).splitlines()[0][:300]}; set strategy.target_modules to "
                                "names of the encoder's linear layers (BERT: query, key, value, dense)") from None
        if opts.merge != "sequential":
            with torch.no_grad():
                for name, layer in lora_layers(encoder).items():
                    weight = layer.get_base_layer().weight
                    if f"{name}.weight" not in self.base:  # first task: the pretrained weights
                        self.base[f"{name}.weight"] = weight.detach().clone()
                    weight.copy_(self.base[f"{name}.weight"])  # every adapter trains from W0
        model.encoder = encoder
        return model

    def learning_rate(self, task, lr: float) -> float:
        return lr if self.options.lr is None else self.options.lr

    def after_task(self, task, model: nn.Module) -> nn.Module:
        peft_model = model.encoder
        delta = lora_deltas(peft_model)
        self.last_figures = {"lora/delta_norm": float(torch.sqrt(sum(d.pow(2).sum() for d in delta.values())))}
        if self.options.merge == "sequential":
            encoder = peft_model.merge_and_unload()
        else:
            encoder = peft_model.unload()  # the frozen base weights are W0
            self.deltas.append({k: v.cpu() for k, v in delta.items()})
            self._apply_combination(encoder)
        for p in encoder.parameters():  # peft froze the base; hand back a model like the one received
            p.requires_grad_(True)
        model.encoder = encoder
        return model

    @torch.no_grad()
    def _apply_combination(self, encoder: nn.Module) -> None:
        params = dict(encoder.named_parameters())
        combined = combine_deltas(self.deltas, self.options.merge, self.options.coefficient)
        for name, w0 in self.base.items():
            params[name].copy_(w0 + combined[name].to(w0.device))

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base, "deltas": self.deltas}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.base = dict(state["base"])
        self.deltas = [dict(d) for d in state["deltas"]]


register_strategy("lora-merge", LoRAMergeOptions, LoRAMerge)
