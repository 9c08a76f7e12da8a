"""Linear CKA against cases whose answer is known without the formula under test."""

from itertools import permutations

import numpy as np
import pytest

from cl_nlp.evaluation.cka import cka_null, debiased_cka, linear_cka


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


# ---- debiased CKA (unbiased HSIC) and the level unrelated features give ----

def hsic_u_brute_force(k, l):
    """Song et al.'s unbiased HSIC as its U-statistic: averages over distinct index tuples of
    k_ij l_ij + k_ij l_qr - 2 k_ij l_iq (written out with loops, no matrix algebra)."""
    n = len(k)
    pairs = list(permutations(range(n), 2))
    triples = list(permutations(range(n), 3))
    quads = list(permutations(range(n), 4))
    first = sum(k[i][j] * l[i][j] for i, j in pairs) / len(pairs)
    second = sum(k[i][j] * l[q][r] for i, j, q, r in quads) / len(quads)
    third = sum(k[i][j] * l[i][q] for i, j, q in triples) / len(triples)
    return first + second - 2 * third


def test_debiased_cka_matches_the_u_statistic_by_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    y[:, 0] += x[:, 0]
    k, l = x @ x.T, y @ y.T
    expected = hsic_u_brute_force(k, l) / np.sqrt(hsic_u_brute_force(k, k) * hsic_u_brute_force(l, l))
    assert debiased_cka(x, y) == pytest.approx(expected, rel=1e-10)


def test_independent_features_read_near_zero_debiased_but_far_from_zero_biased():
    # Biased linear CKA of independent isotropic features is ~0.46 at 450 x 384 (the default test size x MiniLM width).
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(450, 384)), rng.normal(size=(450, 384))
    assert linear_cka(x, y) == pytest.approx(0.46, abs=0.02)
    assert abs(debiased_cka(x, y)) < 0.01
    null = cka_null(x, y, permutations=20, seed=0)
    assert null.linear_mean == pytest.approx(0.46, abs=0.02) and abs(null.debiased_mean) < 0.01
    assert null.debiased_hi < 0.02 and null.permutations == 20


def test_null_is_the_cka_of_shuffled_pairings():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 5))
    y = x @ rng.normal(size=(5, 4)) + 0.1 * rng.normal(size=(40, 4))
    null = cka_null(x, y, permutations=30, seed=11)
    perms = [np.random.default_rng(11).permutation(40)]  # the generator's first permutation, as the null draws it
    gen = np.random.default_rng(11)
    shuffled = [gen.permutation(40) for _ in range(30)]
    assert perms[0].tolist() == shuffled[0].tolist()
    assert null.linear_mean == pytest.approx(np.mean([linear_cka(x, y[p]) for p in shuffled]), rel=1e-9)
    deb = [debiased_cka(x, y[p]) for p in shuffled]
    assert null.debiased_mean == pytest.approx(np.mean(deb), rel=1e-9, abs=1e-12)
    assert null.debiased_hi == pytest.approx(np.quantile(deb, 0.95), rel=1e-9, abs=1e-12)
    assert debiased_cka(x, y) > 0.5 > null.debiased_hi


def test_debiased_cka_of_identical_features_is_one_and_needs_four_examples():
    x = np.random.default_rng(7).normal(size=(30, 6))
    assert debiased_cka(x, -2 * x) == pytest.approx(1.0)
    assert np.isnan(debiased_cka(x[:3], x[:3]))
