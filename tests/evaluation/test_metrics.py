"""Metrics checked against values worked out by hand from the papers' formulas (Lopez-Paz & Ranzato 2017,
Chaudhry et al. 2018)."""

import math

import numpy as np
import pytest

from cl_nlp.evaluation import metrics

# R[i, j]: accuracy on task j after training through task i. Task 0 peaks *after* task 1
# (0.95 > 0.90), so Chaudhry's max-based forgetting differs from first-minus-last.
R = np.array([
    [0.90, 0.10, 0.00],
    [0.95, 0.80, 0.20],
    [0.50, 0.70, 0.95],
])
B = np.array([0.10, 0.05, 0.00])


def test_average_accuracy_by_stage():
    assert metrics.average_accuracy(R, 1) == pytest.approx(0.90)
    assert metrics.average_accuracy(R, 2) == pytest.approx((0.95 + 0.80) / 2)
    assert metrics.average_accuracy(R, 3) == pytest.approx((0.50 + 0.70 + 0.95) / 3)


def test_backward_transfer_uses_accuracy_right_after_learning():
    # ((0.50 - 0.90) + (0.70 - 0.80)) / 2
    assert metrics.backward_transfer(R, 3) == pytest.approx(-0.25)
    assert metrics.backward_transfer(R, 2) == pytest.approx(0.95 - 0.90)
    assert math.isnan(metrics.backward_transfer(R, 1))


def test_forward_transfer_against_untrained_accuracy():
    # ((R[0,1] - b1) + (R[1,2] - b2)) / 2 = ((0.10 - 0.05) + (0.20 - 0.00)) / 2
    assert metrics.forward_transfer(R, B, 3) == pytest.approx(0.125)
    assert math.isnan(metrics.forward_transfer(R, B, 1))


def test_forgetting_takes_the_max_over_earlier_stages():
    # task 0: max(0.90, 0.95) - 0.50 = 0.45 ; task 1: 0.80 - 0.70 = 0.10
    np.testing.assert_allclose(metrics.forgetting_per_task(R, 3), [0.45, 0.10])
    assert metrics.average_forgetting(R, 3) == pytest.approx(0.275)
    assert metrics.average_forgetting(R, 2) == pytest.approx(0.90 - 0.95)
    assert math.isnan(metrics.average_forgetting(R, 1))


def test_intransigence_is_joint_minus_diagonal():
    np.testing.assert_allclose(metrics.intransigence(R, [0.92, 0.85, 0.95]), [0.02, 0.05, 0.0], atol=1e-12)


def test_unevaluated_cells_are_ignored_by_forgetting():
    Rn = R.copy()
    Rn[1, 0] = np.nan
    np.testing.assert_allclose(metrics.forgetting_per_task(Rn, 3), [0.40, 0.10])


def test_summary_and_shape_checks():
    s = metrics.summary(R, 3, B)
    assert set(s) == {"acc", "bwt", "forgetting", "fwt"}
    with pytest.raises(ValueError):
        metrics.average_accuracy(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError):
        metrics.average_accuracy(R, 4)
