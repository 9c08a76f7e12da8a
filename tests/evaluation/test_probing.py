"""Linear probes on synthetic features whose decodability is known by construction."""

import numpy as np
import pytest

from cl_nlp.evaluation.probing import fit_probe, per_class_sample, probe_accuracy


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
