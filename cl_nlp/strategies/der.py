"""Dark Experience Replay, DER and DER++ (Buzzega, Boschini, Porrello, Abati & Calderara, NeurIPS 2020).

The buffer stores examples *with the logits the model gave them when they were stored*, and later
batches match those logits:

    DER:    L = CE(current) + α · MSE( z(x'), z' )                      (x', z') ~ buffer
    DER++:  L = CE(current) + α · MSE( z(x'), z' ) + β · CE( z(x''), y'' )   (x'', y'') ~ buffer, drawn apart

Each term is a mean over its own rows; the MSE, as in the authors' code (``F.mse_loss``), is a
mean over rows *and* classes, so α keeps the scale of the values the paper tuned (0.1-0.5). z is
the head's whole output (``output.all_logits``, every class, unmasked), as stored; the cross-
entropies use the scenario's logits (task-incremental: each example's own task head).

Buffer: reservoir sampling over the stream of training batches, as in the paper (Algorithm 1) and
its code: after each optimisation step the batch's new examples are offered with the logits of
that step's forward pass (taken before the update, in training mode). So the buffer fills during
the first task already, and the stored logits come from along the training trajectory rather than
only from each task's end point, which is the paper's argument for them. With several epochs an
example is offered once per epoch (as in the authors' code), each time with that epoch's logits.

Rows of a training batch: the current task's examples first, then ``per_batch`` buffer examples
for the logit term (DER++: another ``per_batch`` for the label term), marked by
``extra["replayed"]`` and ``extra["der_role"]`` (0 new, 1 logit matching, 2 labels) and carrying
``extra["stored_logits"]``. ``extra["row_weight"]`` turns the three means into one mean over the
batch's rows, so each data-parallel slice's mean loss (which the trainer weights by the slice's
size) adds up to the whole batch's loss; the logits to store are gathered from every process, so
every process stores the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cl_nlp.batching import Examples
from cl_nlp.options import require
from cl_nlp.runtime.distributed import gather_slices
from cl_nlp.strategies.base import ForwardOutput, Strategy, StrategyContext
from cl_nlp.strategies.buffer import ReplayBuffer, buffer_figures
from cl_nlp.strategies.registry import register_strategy

NEW, MATCH_LOGITS, MATCH_LABELS = 0, 1, 2


@dataclass
class DEROptions:
    """Options of :class:`DER`."""

    alpha: float = field(default=0.3, metadata={"help": "weight α of the logit-matching term α·MSE(z(x'), z')"})
    size: int = field(default=1000, metadata={"help": "examples (with their logits) the buffer holds"})
    per_batch: int = field(default=8, metadata={"help": "buffer examples added to every batch, per replay term"})
    selection: Literal["reservoir", "class_balanced"] = field(
        default="reservoir", metadata={"help": "how the buffer keeps examples: reservoir (the paper's), or class-balanced (CBRS)"})

    def __post_init__(self) -> None:
        require(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        require(self.size >= 1, f"size must be >= 1, got {self.size}")
        require(self.per_batch >= 1, f"per_batch must be >= 1, got {self.per_batch}")


@dataclass
class DERPPOptions(DEROptions):
    """Options of DER++: DER's, plus the weight of the cross-entropy on a second buffer batch."""

    beta: float = field(default=0.5, metadata={"help": "weight β of the cross-entropy β·CE(z(x''), y'') on a second buffer batch"})

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.beta >= 0, f"beta must be >= 0, got {self.beta}")


def with_roles(examples: Examples, role: int, weight: float) -> Examples:
    """``examples`` with the columns DER's loss reads: replayed, der_role, row_weight (stored_logits kept)."""
    n = len(examples)
    extra = dict(examples.extra)
    extra.update(replayed=np.full(n, role != NEW), der_role=np.full(n, role, np.int64),
                 row_weight=np.full(n, weight, np.float32))
    return Examples(examples.input_ids, examples.labels, examples.task_ids, examples.token_type_ids, extra)


class DER(Strategy):
    """Dark Experience Replay: replay buffer examples and match the logits stored with them.

    Example:
        >>> der = DER(DEROptions(alpha=0.3, size=200, per_batch=8), StrategyContext(num_classes=4))
        >>> len(der.buffer)
        0
    """

    options: DEROptions
    prefix = "der"

    def __init__(self, options: DEROptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or DEROptions(), context)
        self.buffer = ReplayBuffer(self.options.size, self.options.selection, self.context.seed)
        self.task_names: dict[int, str] = {}
        self._pending: Examples | None = None  # the current batch's new examples, stored after its step
        self._pending_logits: np.ndarray | None = None
        self._batch_len = 0
        self._logit_term: torch.Tensor | None = None
        self._steps = 0

    @property
    def beta(self) -> float:
        return getattr(self.options, "beta", 0.0)

    def before_task(self, task, model: nn.Module) -> nn.Module:
        self.task_names[task.index] = task.name
        self._logit_term, self._steps = None, 0
        return model

    def train_batches(self, task, batches: Iterator[Examples]) -> Iterator[Examples]:
        k = self.options.per_batch
        for batch in batches:
            parts = [(batch, NEW)]
            if len(self.buffer):
                parts.append((self.buffer.sample(k), MATCH_LOGITS))
                if self.beta > 0:
                    parts.append((self.buffer.sample(k), MATCH_LABELS))
            n = sum(len(p) for p, _ in parts)
            scale = {NEW: 1.0, MATCH_LOGITS: self.options.alpha, MATCH_LABELS: self.beta}
            mixed = Examples.concat([with_roles(p, role, scale[role] * n / len(p)) for p, role in parts])
            self._pending, self._pending_logits, self._batch_len = batch, None, n
            yield mixed
            self._store_pending()  # after the step, as in the paper: the next batch may replay these

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor], output: ForwardOutput) -> torch.Tensor:
        labels = batch["labels"]
        role = batch.get("der_role")
        if role is None:  # a batch not made by train_batches (nothing to replay): plain cross-entropy
            return F.cross_entropy(output.logits, labels)
        self._keep_logits(output.all_logits.detach())
        # Every row's cross-entropy and logit distance, then each row keeps its own (no host sync
        # to split the batch; a stored example's label lies in its own task, so its CE is finite).
        ce = F.cross_entropy(output.logits, labels, reduction="none")
        stored = batch.get("stored_logits")  # absent while the buffer is still empty
        distance = torch.zeros_like(ce) if stored is None else (output.all_logits - stored).pow(2).mean(-1)
        matched = role == MATCH_LOGITS
        weighted = torch.where(matched, distance, ce) * batch["row_weight"]
        term = (weighted * matched).sum() / len(labels)
        self._logit_term = term.detach() if self._logit_term is None else self._logit_term + term.detach()
        self._steps += 1
        return weighted.mean()

    def _keep_logits(self, all_logits: torch.Tensor) -> None:
        """The new examples' logits of this step, from every process's slice (rows of the whole batch, in order)."""
        rows = gather_slices(all_logits.float(), self._batch_len)
        self._pending_logits = rows[: len(self._pending)].cpu().numpy()

    def _store_pending(self) -> None:
        if self._pending is None or self._pending_logits is None:
            return
        new = self._pending
        self.buffer.add(Examples(new.input_ids, new.labels, new.task_ids, new.token_type_ids,
                                 {"stored_logits": self._pending_logits.astype(np.float32)}))
        self._pending, self._pending_logits = None, None

    def figures(self) -> dict[str, float]:
        out = buffer_figures(self.buffer, self.task_names, self.prefix)
        if self._steps:  # α·MSE per step, over this process's rows of each batch
            out[f"{self.prefix}/logit_term_mean"] = float(self._logit_term) / self._steps
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "task_names": {str(k): v for k, v in self.task_names.items()}}

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.task_names = {int(k): v for k, v in state["task_names"].items()}


class DERPlusPlus(DER):
    """DER++: DER's logit matching plus a cross-entropy on a second buffer batch's labels."""

    options: DERPPOptions
    prefix = "derpp"

    def __init__(self, options: DERPPOptions | None = None, context: StrategyContext | None = None):
        super().__init__(options or DERPPOptions(), context)


register_strategy("der", DEROptions, DER)
register_strategy("derpp", DERPPOptions, DERPlusPlus)
