"""Chance levels, the task's best and the margin, on hand-made results."""

import math

import numpy as np
import pytest

from cl_nlp.evaluation.reference_levels import (
    best_level,
    chance_level,
    margin,
    n_test_examples,
)
from cl_nlp.evaluation.results import Results


def test_chance_is_the_best_input_blind_accuracy():
    r = Results(["a", "b", "c"], "class-incremental")
    r.task_classes = [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    r.test_class_counts = [[10, 10, 10], [30, 10], []]
    assert chance_level(r, 0) == pytest.approx(1 / 3)     # balanced: 1 / classes
    assert chance_level(r, 1) == pytest.approx(0.75)      # unbalanced: the largest class's share
    assert chance_level(r, 2) == pytest.approx(0.25)      # counts unknown: 1 / classes
    assert n_test_examples(r, 0) == 30 and n_test_examples(r, 2) is None


def test_older_results_take_class_counts_from_their_classification_reports():
    r = Results(["a"], "class-incremental")
    r.extra["classification_reports"] = {"1": {"a": {"classes": [4, 5], "support": [6, 2]}}}
    assert chance_level(r, 0) == pytest.approx(0.75) and n_test_examples(r, 0) == 8
    assert math.isnan(chance_level(Results(["a"], "class-incremental"), 0))


def test_best_and_margin():
    r = Results(["a", "b"], "class-incremental")
    r.matrices["live"] = np.array([[0.8, np.nan], [0.3, 0.9]])
    r.matrices["probe"] = np.array([[0.85, np.nan], [0.7, 0.95]])
    r.before["probe"] = np.array([0.9, 0.2])
    assert best_level(r, 0, 2, ("live", "probe")) == pytest.approx(0.9)  # the pretrained probe counts
    assert best_level(r, 1, 2, ("live", "probe")) == pytest.approx(0.95)
    assert margin(0.1, 0.9) == pytest.approx(0.08) and margin(0.5, 0.4) == 0.0 and margin(math.nan, 0.9) == 0.0
