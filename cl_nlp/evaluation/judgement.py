"""What an interval allows one to say: higher, lower, the same within a margin, or cannot tell.

An :class:`Estimate` is a number with its confidence interval. :func:`judge` compares it with a
reference (0 for a difference, the chance level for an accuracy) and a margin ``δ`` (a change
too small to matter, see :mod:`cl_nlp.evaluation.reference_levels`):

- ``same``: the whole interval lies within ``reference ± δ`` — whatever the truth, it differs
  by less than the margin (an equivalence statement; it may still be significantly non-zero);
- ``higher`` / ``lower``: the interval excludes the reference (significant) and reaches beyond
  the margin;
- ``unclear``: the interval holds the reference *and* reaches past the margin — the test set is
  too small (or the change too close to the margin) to tell.

Every sentence of the verdict names the estimates it rests on together with their outcome,
and :func:`check_outcome` re-derives that outcome from the numbers, so a sentence can never
claim more than its interval supports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

HIGHER, LOWER, SAME, UNCLEAR = "higher", "lower", "same", "unclear"
OUTCOMES = (HIGHER, LOWER, SAME, UNCLEAR)


@dataclass(frozen=True)
class Estimate:
    """A measured number with its two-sided confidence interval at ``level``.

    ``method`` names how the interval was computed (``wilson``, ``paired`` = Newcombe's paired
    interval, ``unpaired``, ``bootstrap``, ``normal``, ``t``); NaN bounds = no interval.
    """

    value: float
    lo: float = math.nan
    hi: float = math.nan
    level: float = 0.95
    method: str = ""

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        def num(x: Any) -> float:
            return math.nan if x is None else float(x)

        return cls(num(d.get("value")), num(d.get("lo")), num(d.get("hi")), float(d.get("level", 0.95)),
                   str(d.get("method", "")))


def judge(estimate: Estimate, reference: float = 0.0, margin: float = 0.0) -> str:
    """The outcome of ``estimate`` against ``reference`` with equivalence margin ``margin`` (>= 0).

    Example:
        >>> judge(Estimate(-0.30, -0.36, -0.24), margin=0.05)
        'lower'
        >>> judge(Estimate(-0.01, -0.03, 0.02), margin=0.05)
        'same'
        >>> judge(Estimate(-0.10, -0.40, 0.10), margin=0.05)
        'unclear'
    """
    if not estimate.has_interval or not math.isfinite(reference):
        return UNCLEAR
    lo, hi = estimate.lo - reference, estimate.hi - reference
    if margin > 0 and -margin < lo and hi < margin:
        return SAME
    if lo > 0:
        return HIGHER
    if hi < 0:
        return LOWER
    return UNCLEAR


@dataclass(frozen=True)
class Evidence:
    """One estimate a sentence rests on, what it is compared with, and the outcome claimed."""

    role: str          # what the estimate is in the claim, e.g. "live_change"
    label: str         # what the number is, e.g. "clinc1: final probe - probe after learning"
    estimate: Estimate
    reference: float   # 0 for differences, chance for accuracies
    margin: float
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "label": self.label, "estimate": self.estimate.to_dict(), "reference": self.reference,
                "margin": self.margin, "outcome": self.outcome}


def evidence(role: str, label: str, estimate: Estimate, reference: float = 0.0, margin: float = 0.0) -> Evidence:
    """Evidence whose outcome is judged from the estimate (the only way the verdict builds it)."""
    return Evidence(role, label, estimate, reference, margin, judge(estimate, reference, margin))


def check_outcome(e: Evidence) -> None:
    """Raise ``AssertionError`` if ``e.outcome`` is not what its own numbers say."""
    actual = judge(e.estimate, e.reference, e.margin)
    if actual != e.outcome:
        raise AssertionError(f"{e.label}: claimed {e.outcome!r} but {e.estimate} against {e.reference} "
                             f"± {e.margin} says {actual!r}")
