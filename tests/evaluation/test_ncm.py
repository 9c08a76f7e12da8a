"""The nearest-class-mean readout against brute force: prototypes kept from when each task was learned."""

import copy
import itertools

import numpy as np
import pytest
import torch

from cl_nlp.batching import encode
from cl_nlp.evaluation.evaluator import Evaluator, ProbeSettings
from cl_nlp.evaluation.ncm import class_means, nearest_class_mean
from cl_nlp.evaluation.probing import per_class_sample
from cl_nlp.evaluation.results import Results
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import build_model, load_tokenizer
from cl_nlp.run_context import RunContext
from cl_nlp.streams import build_stream
from tests.evaluation.test_evaluator import direct_features


def brute_force_ncm(train_x, train_y, test_x, allowed_classes):
    """Per test row: the class (among ``allowed_classes``) whose normalised mean of normalised
    training features is closest in Euclidean distance, written out with loops."""
    def unit(v):
        return v / np.sqrt(sum(a * a for a in v))

    means = {}
    for c in set(train_y.tolist()):
        rows = [unit(x) for x, y in zip(train_x, train_y) if y == c]
        means[c] = unit(sum(rows) / len(rows))
    out = []
    for x in test_x:
        u = unit(x)
        dist = {c: np.sqrt(sum((a - b) ** 2 for a, b in zip(u, means[c]))) for c in sorted(allowed_classes) if c in means}
        out.append(min(dist, key=lambda c: (dist[c], c)))
    return np.array(out)


def test_nearest_class_mean_matches_brute_force_and_respects_allowed_classes():
    rng = np.random.default_rng(0)
    train_x, train_y = rng.normal(size=(40, 6)) * rng.uniform(0.5, 3, size=(40, 1)), rng.integers(0, 5, 40)
    test_x = rng.normal(size=(25, 6))
    means = class_means(train_x, train_y)
    np.testing.assert_array_equal(nearest_class_mean(test_x, means), brute_force_ncm(train_x, train_y, test_x, range(5)))
    allowed = np.zeros((25, 5), dtype=bool)
    allowed[:, [1, 3]] = True
    np.testing.assert_array_equal(nearest_class_mean(test_x, means, allowed),
                                  brute_force_ncm(train_x, train_y, test_x, [1, 3]))
    assert set(nearest_class_mean(test_x, {k: means[k] for k in (0, 2)})) <= {0, 2}  # classes without a mean never come out


@pytest.fixture(scope="module")
def setup(tiny_model):
    stream = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 3, "train_per_class": 8, "test_per_class": 4})
    tokenizer = load_tokenizer(tiny_model)
    trains = [encode(t.train, tokenizer, 32, i) for i, t in enumerate(stream.tasks)]
    tests = [encode(t.test, tokenizer, 32, i) for i, t in enumerate(stream.tasks)]
    torch.manual_seed(0)
    return stream, tokenizer, trains, tests, build_model(tiny_model, stream.num_classes)


def ctx(stream, tokenizer) -> RunContext:
    return RunContext(stream.scenario, len(stream), stream.num_classes, pad_id=tokenizer.pad_token_id,
                      task_classes=task_class_matrix(stream))


def test_evaluator_ncm_matrix_uses_prototypes_from_when_each_task_was_learned(setup):
    stream, tokenizer, trains, tests, model = setup
    results = Results(stream.task_names, stream.scenario)
    evaluator = Evaluator(results, tests, ctx(stream, tokenizer), batch_size=64,
                          trains=trains, probes=ProbeSettings(per_class=5, seed=3), ncm=True)
    samples = [t.subset(per_class_sample(t.labels, 5, seed=3 + j)) for j, t in enumerate(trains)]
    evaluator.evaluate(model, 0)
    assert "ncm" not in results.before and "ncm" not in results.matrices
    evaluator.evaluate(model, 1)
    first = direct_features(model, samples[0])
    expected = brute_force_ncm(first, samples[0].labels, direct_features(model, tests[0]), stream.tasks[0].class_ids)
    assert results.matrices["ncm"][0, 0] == pytest.approx(np.mean(expected == tests[0].labels))

    later = copy.deepcopy(model)  # "training" the second task moved the encoder
    with torch.no_grad():
        for p in later.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    evaluator.evaluate(later, 2)
    second = direct_features(later, samples[1])
    train_x = np.concatenate([first, second])  # task 1's prototypes stay those of the encoder that learned it
    train_y = np.concatenate([samples[0].labels, samples[1].labels])
    for j in range(2):
        predicted = brute_force_ncm(train_x, train_y, direct_features(later, tests[j]), range(stream.num_classes))
        assert results.matrices["ncm"][1, j] == pytest.approx(np.mean(predicted == tests[j].labels))
    assert "ncm_acc_avg" in evaluator.stage_metrics(2)

    restored = Evaluator(Results(stream.task_names, stream.scenario), tests, ctx(stream, tokenizer),
                         trains=trains, probes=ProbeSettings(per_class=5, seed=3), ncm=True)
    restored.load_state_dict(evaluator.state_dict())
    assert sorted(restored.ncm.means) == sorted(evaluator.ncm.means) == sorted(
        itertools.chain(*(t.class_ids for t in stream.tasks)))
    assert all(np.array_equal(restored.ncm.means[c], m) for c, m in evaluator.ncm.means.items())
    assert restored.learned_features.keys() == evaluator.learned_features.keys()
