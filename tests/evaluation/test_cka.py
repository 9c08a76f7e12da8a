"""Linear CKA against cases whose answer is known without the formula under test."""

import numpy as np
import pytest

from cl_nlp.evaluation.cka import linear_cka


def test_identical_features_give_one():
    x = np.random.default_rng(0).normal(size=(200, 16))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_independent_features_with_many_samples_give_near_zero():
    rng = np.random.default_rng(1)
    n, d = 20000, 8
    value = linear_cka(rng.normal(size=(n, d)), rng.normal(size=(n, d)))
    # The estimator's bias for independent isotropic features is about d/n (= 4e-4 here).
    assert 0 <= value < 5 * d / n


def test_invariant_to_orthogonal_rotation_isotropic_scaling_and_translation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 12))
    y = x @ rng.normal(size=(12, 12)) + 0.5 * rng.normal(size=(300, 12))  # related, not identical
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    base = linear_cka(x, y)
    assert 0.1 < base < 0.99
    assert linear_cka(x @ q, y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x, 7.5 * y + 3.0) == pytest.approx(base, rel=1e-10)


def test_not_invariant_to_anisotropic_scaling():
    # CKA is meant to notice a representation whose directions were re-weighted.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 10))
    stretched = x * np.array([10.0] + [0.1] * 9)
    assert linear_cka(x, stretched) < 0.5


def test_matches_the_definition_on_a_hand_worked_case():
    # x = [1, 2, 3] and y = [1, 0, 2] as single features: CKA is then the squared Pearson correlation.
    x = np.array([[1.0], [2.0], [3.0]])
    y = np.array([[1.0], [0.0], [2.0]])
    # centred: x = [-1, 0, 1], y = [0, -1, 1]; <x,y> = 1, |x|^2 = 2, |y|^2 = 2 -> r^2 = 1/4
    assert linear_cka(x, y) == pytest.approx(0.25)


def test_rejects_mismatched_examples():
    with pytest.raises(ValueError):
        linear_cka(np.zeros((5, 2)), np.zeros((4, 2)))
