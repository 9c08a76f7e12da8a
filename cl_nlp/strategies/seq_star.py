"""SEQ*: sequential fine-tuning made to *recall* (Zheng et al., ACL 2024, "Learn or Recall?
Revisiting Incremental Learning with Pre-trained Language Models").

The paper's finding: the pretrained encoder keeps what old tasks need; sequential fine-tuning
loses them mostly through the classifier. SEQ* therefore (1) warms the model up on the first
task, then fixes (freezes) the encoder for good, (2) freezes the rows of classes already
learned, (3) optionally uses a cosine classifier, and (4) pre-allocates the classifier for
future classes. Per task t with classes C_t, old classes O_t = ∪_{s<t} C_s \\ C_t and encoder
f (fixed after the warm-up), the trained parameters are the head rows W_c, b_c of c ∉ O_t:

    min  CE(z(x), y)   with  z_c(x) = W_c·f(x) + b_c                      (linear)
                             z_c(x) = s · f(x)·W_c / (‖f(x)‖·‖W_c‖)          (cosine, scale s)

over the whole head (every class of the stream, future ones included: "pre-allocated").

What is followed from the authors' released configuration ``SEQ_pre_warm_fix.yaml``
(repository zzz47zzz/codebase-for-incremental-learning-with-llm, ``models/SEQ.py``):

- the warm-up is ``warmup_epochs`` (theirs: 3) epochs of **full** fine-tuning (encoder and
  head, cross-entropy) on the **first** task only; then the encoder is frozen and the first
  task, like every later one, trains the head alone for ``train.epochs`` epochs (theirs: 5).
  ``warmup_epochs: 0`` never trains the encoder (their ``SEQ_fix``: a probe of the pretrained
  encoder). The trainer runs the same number of epochs for every task, so the warm-up runs
  inside :meth:`SeqStar.before_task` with its own loop over the task's training split
  (length-grouped batches from :func:`cl_nlp.batching.train_batches`, a generator seeded from
  the run seed and task index, dropout on its own seeded torch stream, so the run's other random
  streams are untouched and a rerun is bit-identical);
- two learning rates: the encoder's during the warm-up (``warmup_lr``; theirs 1e-5 at batch 4,
  here 1e-4, the run's default ``train.lr``) and the head's (``lr``; theirs ``classifier_lr``
  1e-3), both constant during the warm-up (their AdamW has no schedule); the head's rate
  replaces ``train.lr`` (through the ``learning_rate`` hook) for the head-only epochs, which keep
  the trainer's warm-up/decay schedule;
- old rows frozen (theirs sets the old task classifiers' learning rate to 0, which also stops
  AdamW's weight decay; here the rows are held by a parametrization, see
  :mod:`cl_nlp.strategies.head_rows`, and stay bit-identical);
- their cosine classifier has no scale (logits in [-1, 1]); ``scale`` defaults to 16 here so
  the softmax is not nearly uniform over dozens of classes; ``scale: 1`` is theirs.

Not followed: they use one linear layer per task concatenated (here one layer over all classes,
the same function) and the [CLS] token of bert-base-cased (here the model's pooling). What
"old classes" are is generalised to domain-incremental streams: rows of classes earlier tasks
used and the current task does not, so a shared label set is never frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import collate, train_batches
from cl_nlp.errors import UserError
from cl_nlp.heads import training_logits
from cl_nlp.options import require
from cl_nlp.strategies.base import Strategy, StrategyContext
from cl_nlp.strategies.head_rows import CosineHead, freeze_rows, release_rows
from cl_nlp.strategies.registry import register_strategy

WARMUP_WEIGHT_DECAY = 0.01  # as the trainer's AdamW (train.weight_decay's default), on matrices only
WARMUP_CLIP = 1.0           # as train.max_grad_norm's default


@dataclass
class SeqStarOptions:
    """Options of :class:`SeqStar`."""

    warmup_epochs: int = field(default=3, metadata={
        "help": "epochs of full fine-tuning on the first task before the encoder is frozen (paper: 3); 0 = never train it"})
    warmup_lr: float = field(default=1e-4, metadata={"help": "encoder learning rate during the warm-up (constant)"})
    lr: float = field(default=1e-3, metadata={"help": "head learning rate (warm-up and head-only epochs; paper's classifier_lr)"})
    freeze_old_rows: bool = field(default=True, metadata={"help": "hold the head rows of earlier tasks' classes fixed"})
    classifier: Literal["linear", "cosine"] = field(default="linear", metadata={
        "help": "linear head, or cosine: scale·cos(feature, row) without bias (paper's choice without replay)"})
    scale: float = field(default=16.0, metadata={"help": "cosine classifier's logit scale (paper: 1)"})

    def __post_init__(self) -> None:
        require(self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        require(self.warmup_lr > 0, f"warmup_lr must be > 0, got {self.warmup_lr}")
        require(self.lr > 0, f"lr must be > 0, got {self.lr}")
        require(self.scale > 0, f"scale must be > 0, got {self.scale}")


class SeqStar(Strategy):
    """SEQ*: warm up on the first task, then a frozen encoder and frozen old classifier rows.

    Example:
        >>> seq = SeqStar(SeqStarOptions(classifier="cosine"), StrategyContext())
        >>> seq.warmed_up
        False
    """

    options: SeqStarOptions

    def __init__(self, options: SeqStarOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or SeqStarOptions(), context)
        self.warmed_up = False
        self.last_figures: dict[str, float] = {}

    def before_task(self, task, model: nn.Module) -> nn.Module:
        if not hasattr(model, "encoder") or not isinstance(getattr(model, "head", None), nn.Module):
            raise UserError("seq-star needs a model with an `encoder` and a `head` (cl-nlp's ContinualClassifier)")
        if self.options.classifier == "cosine" and not isinstance(model.head, CosineHead):
            model.head = CosineHead(model.head, self.options.scale)  # same parameter names: checkpoints still load
        figures: dict[str, float] = {}
        if not self.warmed_up:
            if self.options.warmup_epochs:
                figures["seq_star/warmup_loss"] = self.warm_up(task, model)
            self.warmed_up = True
        for p in model.encoder.parameters():  # fixed for good (again after a resume: the model is rebuilt)
            p.requires_grad_(False)
        if self.options.freeze_old_rows:
            figures["seq_star/frozen_rows"] = float(freeze_rows(model.head, self.old_classes(task.index)))
        figures["seq_star/trainable_parameters"] = float(sum(p.numel() for p in model.parameters() if p.requires_grad))
        self.last_figures = figures
        return model

    def old_classes(self, index: int) -> torch.Tensor:
        """Bool per class: used by a task before ``index`` and not by task ``index``."""
        tc = self.context.task_classes
        if tc is None or index == 0:
            return torch.zeros(self.context.num_classes, dtype=torch.bool)
        return tc[:index].any(0) & ~tc[index]

    def learning_rate(self, task, lr: float) -> float:
        return self.options.lr

    def after_task(self, task, model: nn.Module) -> nn.Module:
        release_rows(model.head)  # the frozen rows' stored values go back into the plain weights
        return model

    def warm_up(self, task, model: nn.Module) -> float:
        """``warmup_epochs`` epochs of full fine-tuning on ``task``; returns the last epoch's mean loss."""
        ctx, opts = self.context, self.options
        device = next(model.parameters()).device
        encoder = [(n, p) for n, p in model.encoder.named_parameters() if p.requires_grad]
        head = [p for p in model.head.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW([
            {"params": [p for n, p in encoder if p.ndim >= 2 and "LayerNorm" not in n], "lr": opts.warmup_lr,
             "weight_decay": WARMUP_WEIGHT_DECAY},
            {"params": [p for n, p in encoder if p.ndim < 2 or "LayerNorm" in n], "lr": opts.warmup_lr, "weight_decay": 0.0},
            {"params": [p for p in head if p.ndim >= 2], "lr": opts.lr, "weight_decay": WARMUP_WEIGHT_DECAY},
            {"params": [p for p in head if p.ndim < 2], "lr": opts.lr, "weight_decay": 0.0},
        ])
        rng = np.random.default_rng([ctx.seed, task.index, 47])  # its own stream: the trainer's batches are unchanged
        was_training = model.training
        model.train()
        losses: list[float] = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(ctx.seed * 1_000_003 + 47)  # dropout, without drawing from the run's torch stream
            for _ in range(opts.warmup_epochs):
                losses = []
                for examples in train_batches(task.train, ctx.batch_size, rng):
                    batch = {k: v.to(device) for k, v in collate(examples, ctx.pad_id).items()}
                    out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
                    logits = out.logits.float()
                    if ctx.task_classes is not None:
                        logits = training_logits(logits, batch["task_ids"], ctx.task_classes, ctx.scenario)
                    loss = F.cross_entropy(logits, batch["labels"])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                                                   WARMUP_CLIP)
                    optimizer.step()
                    losses.append(float(loss.detach()))
        # No stale gradients on the then frozen encoder: the trainer's clipping norm would count them.
        optimizer.zero_grad(set_to_none=True)
        model.train(was_training)
        return float(np.mean(losses)) if losses else float("nan")

    def figures(self) -> dict[str, float]:
        return dict(self.last_figures)

    def state_dict(self) -> dict[str, Any]:
        return {"warmed_up": self.warmed_up}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.warmed_up = bool(state["warmed_up"])


register_strategy("seq-star", SeqStarOptions, SeqStar)
