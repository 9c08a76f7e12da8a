"""The evaluator's probes and drift on a tiny random BERT, checked against direct computations."""

import numpy as np
import pytest
import torch

from cl_nlp.batching import encode
from cl_nlp.evaluation.cka import debiased_cka, linear_cka
from cl_nlp.evaluation.evaluator import Evaluator, ProbeSettings
from cl_nlp.evaluation.intervals import wilson_interval
from cl_nlp.evaluation.probing import NearestClassMean, fit_probe_selected, per_class_sample
from cl_nlp.evaluation.results import Results
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import build_model, load_tokenizer
from cl_nlp.run_context import RunContext
from cl_nlp.streams import build_stream


@pytest.fixture(scope="module")
def setup(tiny_model):
    stream = build_stream("clinc-cil", {"n_tasks": 2, "classes_per_task": 3, "train_per_class": 8, "test_per_class": 4})
    tokenizer = load_tokenizer(tiny_model)
    trains = [encode(t.train, tokenizer, 32, i) for i, t in enumerate(stream.tasks)]
    tests = [encode(t.test, tokenizer, 32, i) for i, t in enumerate(stream.tasks)]
    torch.manual_seed(0)
    model = build_model(tiny_model, stream.num_classes)
    return stream, tokenizer, trains, tests, model


def context_of(stream, tokenizer):
    return RunContext(stream.scenario, len(stream), stream.num_classes, pad_id=tokenizer.pad_token_id,
                      task_classes=task_class_matrix(stream))


def make_evaluator(stream, tokenizer, trains, tests, layerwise=True):
    results = Results(stream.task_names, stream.scenario)
    evaluator = Evaluator(results, tests, context_of(stream, tokenizer), batch_size=64,
                          trains=trains, probes=ProbeSettings(per_class=5, layerwise=layerwise, seed=3),
                          class_names=stream.class_names)
    return results, evaluator


def predict_features(evaluator, model, j):
    from cl_nlp.evaluation.evaluator import predict

    return predict(model, evaluator.tests[j], evaluator.task_classes, evaluator.pad_id).features


@torch.inference_mode()
def direct_features(model, examples):
    """Mean-pooled last layer, one unpadded example at a time (no batching, sorting or masks)."""
    model.eval()
    rows = [model.encoder(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0) for ids in examples.input_ids]
    return torch.stack(rows).numpy()


def test_probes_and_drift_on_an_unchanged_then_perturbed_encoder(setup):
    stream, tokenizer, trains, tests, model = setup
    results, evaluator = make_evaluator(stream, tokenizer, trains, tests)
    evaluator.evaluate(model, 0)

    # The pretrained baseline equals a probe fitted on directly computed features of the same sample,
    # its L2 weight chosen on the same validation split (seed 3 + task 0).
    sample = trains[0].subset(per_class_sample(trains[0].labels, 5, seed=3))
    train_x, test_x = direct_features(model, sample), direct_features(model, tests[0])
    fitted = fit_probe_selected(train_x, sample.labels, seed=3)
    expected = fitted.probe.predict(test_x) == tests[0].labels
    assert results.before["probe"][0] == pytest.approx(expected.mean())
    assert np.array_equal(results.correct_vector("probe", 0, 0), expected)
    assert results.extra["probe_l2"]["0"]["clinc1"] == fitted.l2
    ncm = NearestClassMean.fit(train_x, sample.labels).predict(test_x) == tests[0].labels
    assert np.array_equal(results.correct_vector("ncm_probe", 0, 0), ncm)
    assert np.isfinite(results.before["probe"]).all()
    assert results.task_classes == [stream.tasks[0].class_ids, stream.tasks[1].class_ids]
    assert results.test_class_counts == [[4, 4, 4], [4, 4, 4]]
    n_states = model.encoder.config.num_hidden_layers + 1
    assert sorted(k for k in results.before if k.startswith("probe_layer")) == [f"probe_layer{i}" for i in range(n_states)]

    # Stage 1 with the encoder untouched: nothing drifted and the probe matches the baseline exactly.
    evaluator.evaluate(model, 1)
    assert results.matrices["probe"][0, 0] == results.before["probe"][0]
    assert results.matrices["cka"][0, 0] == pytest.approx(1.0)
    assert results.matrices["cka_pretrained"][0, 0] == pytest.approx(1.0)
    # the last hidden state is the encoder's output, so its layer probe is the main probe
    assert results.matrices[f"probe_layer{n_states - 1}"][0, 0] == results.matrices["probe"][0, 0]
    best = int(results.matrices["probe_best_layer_index"][0, 0])
    assert results.matrices["probe_best_layer"][0, 0] == results.matrices[f"probe_layer{best}"][0, 0]
    assert results.matrices["cka_debiased"][0, 0] == pytest.approx(1.0)
    live = results.correct_vector("live", 1, 0)
    assert live.size == len(tests[0]) and results.matrices["live"][0, 0] == live.mean()
    assert np.isnan(results.matrices["probe"][0, 1])  # task 2 not learned yet: not probed

    state = evaluator.state_dict()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.5 * torch.randn_like(p))
    evaluator.evaluate(model, 2)
    cka = results.matrices["cka"]
    assert cka[1, 0] < 0.99 and cka[1, 1] == pytest.approx(1.0)
    assert np.isfinite(results.matrices["probe"][1, :2]).all()

    # Drift now: both CKAs against right after learning, and shuffled pairings' level beside them.
    then, now = evaluator.learned_features[0], predict_features(evaluator, model, 0)
    assert cka[1, 0] == pytest.approx(linear_cka(then, now))
    assert results.matrices["cka_debiased"][1, 0] == pytest.approx(debiased_cka(then, now))
    assert np.isfinite(results.matrices["cka_debiased_null"][1, 0]) and np.isfinite(results.matrices["cka_null"][1, 0])

    metrics = evaluator.stage_metrics(2)
    assert metrics["probe_acc/clinc1"] == results.matrices["probe"][1, 0]
    probe = results.correct_vector("probe", 2, 0)
    lo, hi = wilson_interval(int(probe.sum()), probe.size)
    assert (metrics["probe_acc_lo/clinc1"], metrics["probe_acc_hi/clinc1"]) == pytest.approx((float(lo), float(hi)))
    assert "acc_lo/clinc2" in metrics and "task_aware_acc_hi/clinc1" in metrics and "ncm_probe_acc/clinc1" in metrics
    assert "acc/clinc1" not in metrics  # the trainer logs acc/* itself
    assert metrics["cka/clinc1"] == cka[1, 0]
    assert metrics["probe_acc_avg"] == pytest.approx(np.mean(results.matrices["probe"][1, :2]))
    assert {"probe_seconds/pretrained", "probe_seconds/clinc1", "probe_seconds/clinc2"} <= set(results.timings)

    # A fresh evaluator given the saved reference features measures the same drift (what resume needs).
    _, resumed = make_evaluator(stream, tokenizer, trains, tests, layerwise=False)
    resumed.load_state_dict(state)
    resumed.evaluate(model, 2)
    assert resumed.results.matrices["cka"][1, 0] == pytest.approx(cka[1, 0])


def test_classification_reports_cover_each_learned_task(setup):
    stream, tokenizer, trains, tests, model = setup
    results, evaluator = make_evaluator(stream, tokenizer, trains, tests, layerwise=False)
    evaluator.evaluate(model, 0)
    predictions = evaluator.evaluate(model, 1)
    reports = results.extra["classification_reports"]
    assert list(reports) == ["1"] and list(reports["1"]) == ["clinc1"]
    report = reports["1"]["clinc1"]
    assert report["classes"] == stream.tasks[0].class_ids
    assert sum(report["support"]) == len(tests[0])
    # recall of each class, counted directly from the live predictions
    p = predictions[0]
    for c, recall in zip(report["classes"], report["recall"]):
        assert recall == pytest.approx(np.mean(p.agnostic[p.labels == c] == c))
    assert results.extra["class_names"] == stream.class_names
    assert "retention" in results.extra and results.extra["retention"]["tasks"][0]["task"] == "clinc1"
    assert results.extra["retention"]["tasks"][0]["accuracies"]["live_after"]["method"] == "wilson"


def test_without_training_sets_no_probes_run(setup):
    stream, tokenizer, _, tests, model = setup
    results = Results(stream.task_names, stream.scenario)
    evaluator = Evaluator(results, tests, context_of(stream, tokenizer), probes=ProbeSettings())
    evaluator.evaluate(model, 0)
    evaluator.evaluate(model, 1)
    assert "probe" not in results.matrices and "probe" not in results.before
    assert results.matrices["cka"][0, 0] == pytest.approx(1.0)  # drift is measured anyway
    assert "probe_acc_avg" not in evaluator.stage_metrics(1)
