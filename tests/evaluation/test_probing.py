"""Linear probes on synthetic features whose decodability is known by construction."""

import numpy as np
import pytest

from cl_nlp.evaluation.probing import (
    L2_GRID,
    NearestClassMean,
    fit_probe,
    fit_probe_selected,
    per_class_sample,
    probe_accuracy,
    validation_split,
)


def clusters(n_per_class: int, n_classes: int, dims: int, seed: int, spread: float = 0.3, labels_from: int = 10):
    """Gaussian blobs around well-separated centres; labels are arbitrary global ids."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(n_classes, dims)) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), dims))
    return x.astype(np.float32), y + labels_from


def test_linearly_separable_features_are_decoded_almost_perfectly():
    x_train, y_train = clusters(20, 8, 32, seed=0)
    x_test, y_test = clusters(50, 8, 32, seed=1)
    assert probe_accuracy(x_train, y_train, x_test, y_test) >= 0.99


def test_shuffled_labels_give_chance():
    n_classes = 10
    x_train, y_train = clusters(30, n_classes, 32, seed=0)
    x_test, y_test = clusters(100, n_classes, 32, seed=1)
    rng = np.random.default_rng(5)
    acc = probe_accuracy(x_train, rng.permutation(y_train), x_test, rng.permutation(y_test))
    # chance is 0.1; 1000 test examples put 3 standard errors at about +-0.03
    assert abs(acc - 1 / n_classes) < 0.05


def test_a_separating_direction_hidden_among_noise_dimensions_is_found():
    # Only dimension 0 carries the label (sign); 50 other dimensions are noise of larger scale.
    rng = np.random.default_rng(7)
    def sample(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(scale=5.0, size=(n, 51))
        x[:, 0] = np.where(y == 1, 1.0, -1.0) + 0.1 * rng.normal(size=n)
        return x, y
    x_train, y_train = sample(200)
    x_test, y_test = sample(500)
    assert probe_accuracy(x_train, y_train, x_test, y_test) > 0.97


def test_labels_missing_from_the_fit_count_as_wrong_and_predictions_use_original_ids():
    x = np.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [1.1, 0.0]])
    probe = fit_probe(x, np.array([42, 42, 7, 7]))
    assert probe.predict(np.array([[0.0, 2.0], [2.0, 0.0]])).tolist() == [42, 7]
    assert probe.accuracy(np.array([[0.0, 2.0], [2.0, 0.0]]), np.array([42, 5])) == 0.5


def test_fit_is_deterministic():
    x, y = clusters(10, 4, 8, seed=3, spread=2.0)
    a, b = fit_probe(x, y), fit_probe(x, y)
    assert np.array_equal(a.weight.numpy(), b.weight.numpy())


def test_constant_feature_dimensions_do_not_break_the_fit():
    x, y = clusters(10, 3, 6, seed=4)
    x[:, 2] = 5.0
    assert probe_accuracy(x, y, x, y) == 1.0


def test_per_class_sample_caps_each_class_and_is_reproducible():
    labels = np.array([3] * 10 + [5] * 2 + [8] * 7)
    idx = per_class_sample(labels, 4, seed=0)
    counts = {c: int(np.sum(labels[idx] == c)) for c in (3, 5, 8)}
    assert counts == {3: 4, 5: 2, 8: 4}
    assert list(idx) == sorted(idx) and len(set(idx.tolist())) == len(idx)
    assert np.array_equal(idx, per_class_sample(labels, 4, seed=0))
    assert not np.array_equal(idx, per_class_sample(labels, 4, seed=1))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        fit_probe(np.zeros((3, 2)), np.zeros(4))


# ---- L2 chosen on validation, nearest class mean ----

def test_validation_split_holds_out_a_third_of_each_class_and_never_a_whole_class():
    labels = np.array([0] * 30 + [1] * 9 + [2] * 2 + [3])
    fit, val = validation_split(labels, seed=1)
    assert sorted(np.concatenate([fit, val]).tolist()) == list(range(len(labels)))
    held = {c: int(np.sum(labels[val] == c)) for c in range(4)}
    assert held == {0: 10, 1: 3, 2: 1, 3: 0}
    assert np.array_equal(val, validation_split(labels, seed=1)[1])


def test_l2_is_chosen_on_validation_by_brute_force_and_refitted_on_the_whole_sample():
    x, y = clusters(12, 5, 40, seed=8, spread=3.0)
    selected = fit_probe_selected(x, y, seed=2)
    fit, val = validation_split(y, seed=2)
    scores = {l2: fit_probe(x[fit], y[fit], l2).accuracy(x[val], y[val]) for l2 in L2_GRID}
    best = max(scores.values())
    assert selected.validation_accuracy == best
    assert selected.l2 == max(l2 for l2, s in scores.items() if s == best)  # ties: the stronger weight
    refit = fit_probe(x, y, selected.l2)
    assert np.array_equal(selected.probe.weight.numpy(), refit.weight.numpy())


def test_a_single_weight_is_fitted_directly():
    x, y = clusters(6, 3, 8, seed=9)
    selected = fit_probe_selected(x, y, grid=(0.5,))
    assert selected.l2 == 0.5 and np.isnan(selected.validation_accuracy)


def test_nearest_class_mean_predicts_the_nearest_centred_normalised_mean():
    x_train, y_train = clusters(10, 4, 6, seed=10, spread=2.0)
    x_test, y_test = clusters(25, 4, 6, seed=11, spread=2.0)
    ncm = NearestClassMean.fit(x_train, y_train)
    # brute force: cosine to each class mean of the centred, unit-length training features
    centre = x_train.mean(0)
    unit = (x_train - centre) / np.linalg.norm(x_train - centre, axis=1, keepdims=True)
    expected = []
    for row in x_test - centre:
        sims = {}
        for c in np.unique(y_train):
            m = unit[y_train == c].mean(0)
            sims[c] = row @ m / (np.linalg.norm(row) * np.linalg.norm(m))
        expected.append(max(sims, key=sims.get))
    assert ncm.predict(x_test).tolist() == expected
    assert ncm.accuracy(x_test, y_test) == pytest.approx(np.mean(np.array(expected) == y_test))
