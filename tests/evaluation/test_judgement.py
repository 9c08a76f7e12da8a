"""Outcomes of an interval against a reference and a margin, case by case."""

import math

import pytest

from cl_nlp.evaluation.judgement import Estimate, check_outcome, evidence, judge

CASES = [
    # (lo, hi, reference, margin, outcome)
    (-0.40, -0.20, 0.0, 0.05, "lower"),      # excludes 0, beyond the margin
    (-0.04, -0.01, 0.0, 0.05, "same"),       # significant but within the margin: negligible
    (-0.03, 0.02, 0.0, 0.05, "same"),
    (-0.20, 0.02, 0.0, 0.05, "unclear"),     # holds 0 and a drop past the margin
    (0.01, 0.30, 0.0, 0.05, "higher"),
    (0.40, 0.50, 1 / 3, 0.0, "higher"),      # an accuracy against chance, no margin
    (0.30, 0.40, 1 / 3, 0.0, "unclear"),
    (math.nan, math.nan, 0.0, 0.05, "unclear"),  # no interval: nothing can be said
]


@pytest.mark.parametrize("lo, hi, reference, margin, outcome", CASES)
def test_judge(lo, hi, reference, margin, outcome):
    assert judge(Estimate((lo + hi) / 2, lo, hi), reference, margin) == outcome


def test_evidence_outcomes_are_rechecked():
    e = evidence("live_change", "x", Estimate(-0.3, -0.4, -0.2), 0.0, 0.05)
    check_outcome(e)
    with pytest.raises(AssertionError):
        check_outcome(e.__class__(e.role, e.label, e.estimate, e.reference, e.margin, "same"))


def test_estimate_round_trips_through_json_with_missing_bounds():
    e = Estimate(0.5, level=0.99, method="wilson")
    d = e.to_dict()
    assert d["lo"] is None and Estimate.from_dict(d).level == 0.99 and not Estimate.from_dict(d).has_interval
