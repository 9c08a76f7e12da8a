"""EWC's quadratic anchor: (λ/2)·Σ_t Σ_i F_t,i (θ_i − θ*_t,i)², cheap enough to apply every step.

Two facts keep it cheap:

* A sum of per-task quadratics is one quadratic plus a constant. With A = Σ_t F_t and the
  Fisher-weighted centre m = Σ_t F_t θ*_t / A (elementwise),
  Σ_t F_t (θ − θ*_t)² = A (θ − m)² + c, where c does not depend on θ. So "separate" EWC (one
  penalty per past task) costs and stores the same as online EWC: one (A, m) per parameter and
  one number c, updated exactly as tasks arrive (no cancellation: every term stays ≥ 0).
* Its gradient λ·A·(θ − m) is known in closed form, so it is added straight into ``p.grad``
  after the task loss's backward (:meth:`QuadraticAnchor.add_gradient`, called from EWC's
  ``adjust_gradients``) with ``torch._foreach`` ops over all parameters: no autograd graph, no
  replay of pow/mul/sum per parameter, no extra gradient tensors for autograd to sum. Tables
  whose Fisher is zero on most rows (word embeddings: only tokens seen in the Fisher sample have
  one) are stored by their non-zero rows and updated with ``index_add_`` on those rows only;
  zero-Fisher rows add nothing, so this is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

SPARSE_ROW_SHARE = 0.5  # a 2-D table is stored by rows when under half its rows have a Fisher


@dataclass
class AnchoredParameter:
    """The quadratic of one parameter: weight A, centre m, and the rows they cover (None = all)."""

    weight: torch.Tensor
    center: torch.Tensor
    rows: torch.Tensor | None = None

    def dense(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, m) shaped like the parameter; rows outside ``rows`` get A = 0 and m = θ."""
        if self.rows is None:
            return self.weight, self.center
        weight = torch.zeros_like(like, dtype=torch.float32).index_copy_(0, self.rows, self.weight)
        center = like.detach().float().clone().index_copy_(0, self.rows, self.center)
        return weight, center


def compress(weight: torch.Tensor, center: torch.Tensor) -> AnchoredParameter:
    """Keep only the non-zero rows of a mostly-zero 2-D Fisher (exact: zero rows add no penalty)."""
    if weight.ndim == 2:
        rows = (weight != 0).any(dim=1).nonzero().view(-1)
        if len(rows) < SPARSE_ROW_SHARE * weight.shape[0]:
            return AnchoredParameter(weight[rows].clone(), center[rows].clone(), rows)
    return AnchoredParameter(weight, center)


class QuadraticAnchor:
    """The accumulated EWC quadratic over named parameters.

    Example:
        >>> anchor = QuadraticAnchor()
        >>> theta = {"w": torch.tensor([1.0, 2.0])}
        >>> anchor.absorb({"w": torch.tensor([1.0, 3.0])}, theta, mode="separate")
        >>> float(anchor.penalty({"w": torch.tensor([2.0, 2.0])}, lam=2.0))  # (2/2)·1·1²
        1.0
    """

    def __init__(self) -> None:
        self.params: dict[str, AnchoredParameter] = {}
        self.const = 0.0  # Σ_t F_t (m − θ*_t)² of separate mode: the penalty at the centre

    def __bool__(self) -> bool:
        return bool(self.params)

    def absorb(self, fisher: dict[str, torch.Tensor], theta: dict[str, torch.Tensor], mode: str = "separate",
               gamma: float = 1.0) -> None:
        """Add a finished task: its Fisher ``fisher`` and anchor ``theta`` (both by parameter name).

        ``separate``: the exact sum of every task's own penalty. ``online`` (Schwarz et al. 2018):
        A ← γ·A + F_new, centre ← the newest parameters, no constant.
        """
        const = 0.0 if mode == "online" else self.const
        new: dict[str, AnchoredParameter] = {}
        for name, f in fisher.items():
            t = theta[name].detach().float()
            old = self.params.get(name)
            if old is None:
                new[name] = compress(f.float().clone(), t.clone())
                continue
            a_old, m_old = old.dense(theta[name])
            if mode == "online":
                new[name] = compress(gamma * a_old + f, t.clone())
                continue
            a_new = a_old + f
            m_new = torch.where(a_new > 0, (a_old * m_old + f * t) / a_new.clamp_min(torch.finfo(a_new.dtype).tiny), t)
            const += float((a_old * (m_old - m_new).pow(2)).sum() + (f * (t - m_new).pow(2)).sum())
            new[name] = compress(a_new, m_new)
        self.params = new
        self.const = const

    def penalty(self, params: dict[str, torch.Tensor], lam: float) -> torch.Tensor:
        """The value (λ/2)·(Σ A (θ − m)² + c) at the named ``params``, a 0-d tensor (not differentiable)."""
        diffs, _, _ = self._differences(params)
        with torch.no_grad():
            total = torch.zeros((), device=self._device(params))
            for d, a in zip(diffs, self.params.values()):
                total += torch.dot(d.view(-1), (a.weight * d).view(-1))
        return 0.5 * lam * (total + self.const)

    def add_gradient(self, params: dict[str, torch.Tensor], lam: float) -> torch.Tensor:
        """Add the penalty's gradient λ·A·(θ − m) to each named parameter's ``.grad``; return the penalty.

        Parameters without a gradient get one. The value (λ/2)·(Σ A (θ − m)² + c) comes from the
        dot products of d = θ − m with g = A·d, which the gradient needs anyway; it stays on the
        device (no host sync). Row-stored tables are updated on their anchored rows only.
        """
        with torch.no_grad():
            diffs, targets, rows = self._differences(params)
            products = list(torch._foreach_mul(diffs, [a.weight for a in self.params.values()]))
            total = torch.zeros((), device=self._device(params))
            for d, g in zip(diffs, products):
                total += torch.dot(d.view(-1), g.view(-1))
            for p in targets:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            dense = [i for i, r in enumerate(rows) if r is None]
            if dense:
                torch._foreach_add_([targets[i].grad for i in dense],
                                    [products[i].to(targets[i].grad.dtype) for i in dense], alpha=lam)
            for p, r, g in zip(targets, rows, products):
                if r is not None:
                    p.grad.index_add_(0, r, g.to(p.grad.dtype), alpha=lam)
        return 0.5 * lam * (total + self.const)

    def _differences(self, params: dict[str, torch.Tensor]):
        """(d = θ − m per anchored parameter, the parameters, their anchored rows or None), in ``self.params`` order."""
        targets = [params[n] for n in self.params]
        anchors = list(self.params.values())
        dense = [i for i, a in enumerate(anchors) if a.rows is None]
        diffs: list[torch.Tensor | None] = [None] * len(anchors)
        with torch.no_grad():
            if dense:
                theta = [targets[i].detach().float() for i in dense]
                for i, d in zip(dense, torch._foreach_sub(theta, [anchors[i].center for i in dense])):
                    diffs[i] = d
            for i, a in enumerate(anchors):
                if a.rows is not None:
                    diffs[i] = targets[i].detach().index_select(0, a.rows).float() - a.center
        return diffs, targets, [a.rows for a in anchors]

    @staticmethod
    def _device(params: dict[str, torch.Tensor]) -> torch.device:
        return next(iter(params.values())).device

    def state_dict(self) -> dict[str, Any]:
        return {"const": self.const, "params": {n: {"weight": a.weight, "center": a.center, "rows": a.rows}
                                                for n, a in self.params.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.const = float(state["const"])
        self.params = {n: AnchoredParameter(v["weight"], v["center"], v["rows"]) for n, v in state["params"].items()}
