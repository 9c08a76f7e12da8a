"""EWC's penalty and Fisher bookkeeping against hand computations."""

import json

import numpy as np
import pytest
import torch

from cl_nlp.errors import UserError
from cl_nlp.strategies import StrategyContext, strategy_options
from cl_nlp.strategies.ewc import EWC, EWCOptions
from cl_nlp.strategies.ewc.quadratic import QuadraticAnchor
from tests.strategies.helpers import perturb_, task_data, tiny_classifier, tiny_examples


def hand_penalty(lam, tasks, theta):
    """(λ/2)·Σ_t Σ_i F_t,i (θ_i − θ*_t,i)² in float64, one task and one parameter at a time."""
    total = 0.0
    for fisher, anchor in tasks:
        for n in fisher:
            total += float((fisher[n].double() * (theta[n].detach().double() - anchor[n].detach().double()) ** 2).sum())
    return lam / 2 * total


def random_fisher(theta, seed, sparse_rows=None):
    g = torch.Generator().manual_seed(seed)
    out = {n: torch.rand(p.shape, generator=g) for n, p in theta.items()}
    if sparse_rows is not None:  # a table whose Fisher is zero outside a few rows (like word embeddings)
        name, rows = sparse_rows
        keep = torch.zeros(out[name].shape[0], dtype=torch.bool)
        keep[rows] = True
        out[name][~keep] = 0
    return out


def params_at(seed):
    g = torch.Generator().manual_seed(seed)
    return {"emb": torch.randn(20, 3, generator=g).requires_grad_(), "w": torch.randn(4, 5, generator=g).requires_grad_(),
            "b": torch.randn(5, generator=g).requires_grad_()}


@pytest.mark.parametrize("seed", [0, 1])
def test_separate_penalty_is_the_sum_of_per_task_penalties(seed):
    anchor, tasks = QuadraticAnchor(), []
    for t in range(3):
        theta_t = params_at(10 * seed + t)
        fisher = random_fisher(theta_t, 100 + t, sparse_rows=("emb", [t, 7, 11 + t]))
        anchor.absorb(fisher, theta_t, mode="separate")
        tasks.append((fisher, {n: p.detach().clone() for n, p in theta_t.items()}))
    assert anchor.params["emb"].rows is not None  # stored by rows: 3 tasks touched 7 of 20 rows
    theta = params_at(99)
    assert anchor.penalty(theta, lam=3.0).item() == pytest.approx(hand_penalty(3.0, tasks, theta), rel=1e-5)
    theta["w"].grad = torch.ones_like(theta["w"])  # an existing gradient is added to; missing ones are created
    value = anchor.add_gradient(theta, lam=3.0)
    assert value.item() == pytest.approx(hand_penalty(3.0, tasks, theta), rel=1e-5)
    for n, p in theta.items():  # gradient: λ·Σ_t F_t (θ − θ*_t), dense, on top of what was there
        assert p.grad.layout == torch.strided, n
        expected = 3.0 * sum(f[n].double() * (p.detach().double() - a[n].double()) for f, a in tasks)
        expected = expected + (1.0 if n == "w" else 0.0)
        assert torch.allclose(p.grad.double(), expected, rtol=1e-5, atol=1e-6), n


def test_gradient_after_adjust_gradients_equals_autograd_of_task_loss_plus_quadratic(tiny_model):
    """What the optimiser steps on: the task loss's gradient plus EWC's, against autograd of
    CE + (λ/2)·Σ F (θ − θ*)² written out in float64 (brute force, no code shared with EWC)."""
    from cl_nlp.batching import collate
    from cl_nlp.strategies.ewc.fisher import fisher_diagonal

    model = tiny_classifier(tiny_model)
    train = tiny_examples(tiny_model, [0, 1, 2, 3, 0, 1])
    ewc = EWC(EWCOptions(lambda_=20.0, fisher_samples=6), StrategyContext(num_classes=4, pad_id=0))
    ewc.after_task(task_data(0, train), model)
    fisher = fisher_diagonal(model, train, [n for n, _ in model.named_parameters()], pad_id=0)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert ewc.anchor.params["encoder.embeddings.word_embeddings.weight"].rows is not None
    perturb_(model)
    model.eval()
    batch = collate(train, pad_id=0)

    def task_loss():
        return torch.nn.functional.cross_entropy(model(batch["input_ids"], batch["attention_mask"]).logits, batch["labels"])

    quadratic = sum((fisher[n].double() * (p.double() - anchor[n].double()) ** 2).sum()
                    for n, p in model.named_parameters())
    (task_loss().double() + 10.0 * quadratic).backward()  # λ/2 = 10
    expected = {n: p.grad.double().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    task_loss().backward()
    ewc.adjust_gradients(model, batch)
    for n, p in model.named_parameters():
        assert p.grad.layout == torch.strided, n  # fused AdamW takes no sparse gradients
        assert torch.allclose(p.grad.double(), expected[n], rtol=1e-4, atol=1e-7), n
    assert ewc._penalty_steps == 1 and ewc._penalty_sum.item() == pytest.approx(10.0 * quadratic.item(), rel=1e-5)


def test_penalty_is_zero_at_the_anchor_and_hand_computed_away_from_it(tiny_model):
    model = tiny_classifier(tiny_model)
    ctx = StrategyContext(num_classes=4, pad_id=0)
    ewc = EWC(EWCOptions(lambda_=50.0, fisher_samples=6), ctx)
    train = tiny_examples(tiny_model, [0, 1, 2, 3, 0, 1, 2, 3])
    assert ewc.penalty_value(model) is None  # nothing learned yet
    ewc.after_task(task_data(0, train), model)
    at_anchor = ewc.penalty_value(model)
    assert at_anchor.item() == 0.0

    rng = np.random.default_rng([0, 0])  # the sample EWC drew: seed 0, task index 0
    sample = train.subset(np.sort(rng.choice(len(train), size=6, replace=False)))
    from cl_nlp.strategies.ewc.fisher import fisher_diagonal
    fisher = fisher_diagonal(model, sample, [n for n, _ in model.named_parameters()], pad_id=0)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    perturb_(model)
    value = ewc.penalty_value(model)
    assert value.item() == pytest.approx(hand_penalty(50.0, [(fisher, anchor)], dict(model.named_parameters())), rel=1e-5)
    figures = ewc.figures()
    assert figures["ewc/fisher_mass"] == pytest.approx(sum(float(f.sum()) for f in fisher.values()), rel=1e-5)


def test_online_fisher_follows_the_running_update():
    anchor = QuadraticAnchor()
    theta1, theta2 = params_at(1), params_at(2)
    f1, f2 = random_fisher(theta1, 3), random_fisher(theta2, 4, sparse_rows=("emb", [2]))
    anchor.absorb(f1, theta1, mode="online", gamma=0.7)
    anchor.absorb(f2, theta2, mode="online", gamma=0.7)
    for n in theta1:
        weight, center = anchor.params[n].dense(theta2[n])
        assert torch.allclose(weight, 0.7 * f1[n] + f2[n]), n  # F <- γF + F_new
        assert torch.equal(center, theta2[n].detach())  # one anchor: the newest weights
    theta = params_at(3)
    expected = hand_penalty(2.0, [({n: 0.7 * f1[n] + f2[n] for n in f1}, theta2)], theta)
    assert anchor.penalty(theta, 2.0).item() == pytest.approx(expected, rel=1e-5)


def test_state_round_trips_through_tensors_and_json(tiny_model):
    model = tiny_classifier(tiny_model)
    ewc = EWC(EWCOptions(fisher_samples=4, mode="online", gamma=0.9), StrategyContext(num_classes=4))
    ewc.after_task(task_data(0, tiny_examples(tiny_model, [0, 1, 2, 3])), model)
    state = ewc.state_dict()
    tensors = []

    def strip(x):
        if isinstance(x, torch.Tensor):
            tensors.append(x)
            return None
        return {k: strip(v) for k, v in x.items()} if isinstance(x, dict) else x
    json.dumps(strip(state))  # everything but tensors is plain JSON
    other = EWC(EWCOptions(fisher_samples=4, mode="online", gamma=0.9), StrategyContext(num_classes=4))
    other.load_state_dict(state, model)
    perturb_(model)
    assert other.penalty_value(model).item() == pytest.approx(ewc.penalty_value(model).item(), rel=1e-6)


def test_options_use_the_word_lambda_and_are_checked():
    assert strategy_options("ewc", {"lambda": 10}).lambda_ == 10.0
    with pytest.raises(UserError, match="lambda must be >= 0"):
        strategy_options("ewc", {"lambda": -1})
    with pytest.raises(UserError, match="gamma applies to mode=online"):
        strategy_options("ewc", {"gamma": 0.5})


def test_options_come_from_yaml_and_set_overrides(tmp_path):
    from cl_nlp.config import load_config

    path = tmp_path / "ewc.yaml"
    path.write_text("strategy:\n  name: ewc\n  lambda: 5\n  mode: online\n  gamma: 0.9\n")
    cfg = load_config(path, ["strategy.lambda=2e4", "strategy.fisher=true"])
    opts = strategy_options(cfg.strategy.name, cfg.strategy.options)
    assert (opts.lambda_, opts.mode, opts.gamma, opts.fisher) == (2e4, "online", 0.9, "true")
