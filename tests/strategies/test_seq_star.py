"""SEQ*: warm-up then a fixed encoder, old head rows bit-identical, the cosine head as the formula says."""

import numpy as np
import pytest
import torch

from cl_nlp.strategies import StrategyContext, strategy_options
from cl_nlp.strategies.head_rows import CosineHead
from cl_nlp.strategies.seq_star import SeqStar
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples
from tests.strategies.trained import learn, snapshot

# Two class-incremental tasks over four classes: {0, 1} then {2, 3}.
TASK_CLASSES = torch.tensor([[True, True, False, False], [False, False, True, True]])


def seq_star(**options):
    return SeqStar(strategy_options("seq-star", options), StrategyContext(num_tasks=2, num_classes=4, seed=5,
                                                                          batch_size=4, task_classes=TASK_CLASSES))


def two_tasks(tiny_model):
    return (task_data(0, tiny_examples(tiny_model, [0, 1] * 4)),
            task_data(1, tiny_examples(tiny_model, [2, 3] * 4, task=1)))


def test_adamw_weight_decay_moves_rows_whose_gradient_is_zero():
    """Why the rows are held by a parametrization: a zeroed gradient does not keep AdamW's hands off."""
    w = torch.nn.Parameter(torch.ones(2, 3))
    optimizer = torch.optim.AdamW([w], lr=0.1, weight_decay=0.01)
    w.grad = torch.zeros(2, 3)
    optimizer.step()
    assert torch.allclose(w.detach(), torch.full((2, 3), 1 - 0.1 * 0.01))  # p <- p - lr·λ·p


@pytest.mark.parametrize("classifier", ["linear", "cosine"])
def test_old_rows_and_encoder_stay_bit_identical_while_new_rows_learn(tiny_model, classifier):
    first, second = two_tasks(tiny_model)
    model = tiny_classifier(tiny_model)
    pretrained = snapshot(model.encoder)
    strategy = seq_star(warmup_epochs=2, classifier=classifier, lr=5e-2)
    model = learn(strategy, model, first, TASK_CLASSES, lr=1e-2, weight_decay=0.1)
    assert isinstance(model.head, CosineHead) == (classifier == "cosine")
    assert any(not torch.equal(p, pretrained[n]) for n, p in snapshot(model.encoder).items())  # the warm-up trained it
    after_first, head_first = snapshot(model.encoder), snapshot(model.head)

    model = learn(strategy, model, second, TASK_CLASSES, lr=1e-2, weight_decay=0.1)
    assert all(torch.equal(p, after_first[n]) for n, p in snapshot(model.encoder).items())  # fixed after the warm-up
    head = snapshot(model.head)
    assert set(head) == {"weight", "bias"}  # the parametrization is gone again: plain names for checkpoints
    assert torch.equal(head["weight"][:2], head_first["weight"][:2])
    assert torch.equal(head["bias"][:2], head_first["bias"][:2])
    assert not torch.allclose(head["weight"][2:], head_first["weight"][2:])  # the new classes' rows learned
    assert strategy.figures()["seq_star/frozen_rows"] == 2
    assert strategy.learning_rate(second, 1e-4) == 5e-2


def test_no_warm_up_never_trains_the_encoder(tiny_model):
    first, second = two_tasks(tiny_model)
    model = tiny_classifier(tiny_model)
    pretrained = snapshot(model.encoder)
    strategy = seq_star(warmup_epochs=0)
    for task in (first, second):
        model = learn(strategy, model, task, TASK_CLASSES)
    assert all(torch.equal(p, pretrained[n]) for n, p in snapshot(model.encoder).items())
    assert "seq_star/warmup_loss" not in strategy.figures()


def test_warm_up_is_seeded_and_leaves_the_run_random_streams_alone(tiny_model):
    first, _ = two_tasks(tiny_model)
    weights = []
    for _ in range(2):
        model = tiny_classifier(tiny_model)
        torch.manual_seed(123)
        state = torch.get_rng_state()
        seq_star(warmup_epochs=1).before_task(first, model)
        assert torch.equal(torch.get_rng_state(), state)
        assert all(p.grad is None for p in model.parameters())  # stale gradients would enter the trainer's clipping
        weights.append(snapshot(model))
    assert all(torch.equal(weights[0][n], weights[1][n]) for n in weights[0])
    assert any(not torch.equal(weights[0][n], p) for n, p in snapshot(tiny_classifier(tiny_model)).items())


def test_cosine_head_computes_scaled_cosines():
    torch.manual_seed(0)
    linear = torch.nn.Linear(5, 3)
    head = CosineHead(linear, scale=7.0)
    x = torch.randn(4, 5)
    xs, ws = x.numpy().astype(np.float64), linear.weight.detach().numpy().astype(np.float64)
    expected = [[7.0 * xs[i] @ ws[c] / (np.linalg.norm(xs[i]) * np.linalg.norm(ws[c])) for c in range(3)] for i in range(4)]
    np.testing.assert_allclose(head(x).detach().numpy(), expected, rtol=1e-5)
    assert not head.bias.requires_grad and torch.equal(head.bias, torch.zeros(3))


def test_old_classes_are_those_earlier_tasks_own_and_this_one_does_not():
    strategy = seq_star()
    assert strategy.old_classes(0).tolist() == [False] * 4
    assert strategy.old_classes(1).tolist() == [True, True, False, False]
    shared = SeqStar(strategy_options("seq-star", {}), StrategyContext(num_classes=2, task_classes=torch.ones(2, 2, dtype=torch.bool)))
    assert not shared.old_classes(1).any()  # domain-incremental: the shared label set keeps training


def test_without_row_freezing_the_old_rows_do_move(tiny_model):
    """The bit-identity above is not for want of training: unfrozen, the same rows change."""
    first, second = two_tasks(tiny_model)
    model = tiny_classifier(tiny_model)
    strategy = seq_star(warmup_epochs=0, freeze_old_rows=False)
    model = learn(strategy, model, first, TASK_CLASSES, weight_decay=0.1)
    before = snapshot(model.head)
    model = learn(strategy, model, second, TASK_CLASSES, weight_decay=0.1)
    assert not torch.equal(model.head.weight[:2], before["weight"][:2])
