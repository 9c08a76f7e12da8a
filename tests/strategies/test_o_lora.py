"""O-LoRA: the orthogonality penalty and its gradient by brute force; adapters merged, subspaces kept."""

import itertools

import numpy as np
import pytest
import torch

from cl_nlp.strategies import StrategyContext, strategy_options
from cl_nlp.strategies.merging import lora_layers
from cl_nlp.strategies.o_lora import OLoRA, orthogonality_penalty
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples
from tests.strategies.trained import learn

TASK_CLASSES = torch.tensor([[True, True, False, False], [False, False, True, True]])


def brute_force(old_tasks: list[dict[str, np.ndarray]], new: dict[str, np.ndarray], norm: str) -> float:
    """Σ_tasks Σ_layers Σ_ij f((A_old A_newᵀ)_ij), every product entry summed by hand."""
    total = 0.0
    for task, (name, a_new) in itertools.product(old_tasks, new.items()):
        a_old = task[name]
        for i, j in itertools.product(range(a_old.shape[0]), range(a_new.shape[0])):
            entry = sum(a_old[i, k] * a_new[j, k] for k in range(a_new.shape[1]))
            total += entry ** 2 if norm == "frobenius" else abs(entry)
    return total


@pytest.mark.parametrize("norm", ["frobenius", "l1"])
def test_penalty_and_gradient_match_brute_force(norm):
    rng = np.random.default_rng(0)
    layers = {"q": 5, "v": 4}  # input width per layer
    old_tasks = [{n: rng.normal(size=(2, d)) for n, d in layers.items()} for _ in range(3)]
    new = {n: rng.normal(size=(2, d)) for n, d in layers.items()}
    stacked = {n: torch.tensor(np.concatenate([t[n] for t in old_tasks])) for n in layers}
    params = {n: torch.tensor(a, requires_grad=True) for n, a in new.items()}
    value = orthogonality_penalty(stacked, params, norm)
    assert value.item() == pytest.approx(brute_force(old_tasks, new, norm), rel=1e-12)

    value.backward()
    eps = 1e-6
    for name, a in new.items():
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            up, down = {**new, name: a.copy()}, {**new, name: a.copy()}
            up[name][idx] += eps
            down[name][idx] -= eps
            numeric[idx] = (brute_force(old_tasks, up, norm) - brute_force(old_tasks, down, norm)) / (2 * eps)
        np.testing.assert_allclose(params[name].grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


def run_two_tasks(tiny_model, lambda_):
    strategy = OLoRA(strategy_options("o-lora", {"r": 2, "lambda": lambda_, "dropout": 0.0}),
                     StrategyContext(num_tasks=2, num_classes=4, seed=0, batch_size=4, task_classes=TASK_CLASSES))
    model = tiny_classifier(tiny_model)
    tasks = [task_data(0, tiny_examples(tiny_model, [0, 1] * 4)), task_data(1, tiny_examples(tiny_model, [2, 3] * 4, task=1))]
    model = learn(strategy, model, tasks[0], TASK_CLASSES, lr=5e-2, epochs=10)
    assert strategy.penalty(model, {}) is None  # nothing to be orthogonal to yet
    model = learn(strategy, model, tasks[1], TASK_CLASSES, lr=5e-2, epochs=10)
    return strategy, model


def test_the_penalty_makes_the_second_subspace_orthogonal_and_adapters_are_merged(tiny_model):
    free, _ = run_two_tasks(tiny_model, 0.0)
    strategy, model = run_two_tasks(tiny_model, 50.0)
    assert not lora_layers(model.encoder)  # merged: a plain encoder again
    assert len(strategy.subspaces) == 2 and all(a.shape[0] == 2 for a in strategy.subspaces[0].values())
    def overlap(s):
        return orthogonality_penalty(s.subspaces[0], s.subspaces[1]).item()
    assert overlap(strategy) < 0.4 * overlap(free)  # measured: 0.007 vs 0.031
    assert strategy.figures()["o_lora/overlap"] == pytest.approx(overlap(strategy), rel=1e-5)
    assert all(p.requires_grad for p in model.parameters())


def test_penalty_weight_scales_the_penalty(tiny_model):
    strategy = OLoRA(strategy_options("o-lora", {"r": 2, "lambda": 3.0}), StrategyContext(num_classes=4))
    model = tiny_classifier(tiny_model)
    strategy.subspaces = [{n: torch.ones(2, 64) for n in
                           (f"encoder.layer.{i}.attention.self.{m}" for i in range(2) for m in ("query", "value"))}]
    model = strategy.before_task(None, model)
    expected = 3.0 * sum((torch.ones(2, 64) @ layer.lora_A["default"].weight.T).pow(2).sum()
                         for layer in lora_layers(model.encoder).values())
    assert torch.allclose(strategy.penalty(model, {}), expected)
