"""MAS: the importance against brute-force per-example autograd, and the quadratic it feeds."""

import pytest
import torch

from cl_nlp.strategies import StrategyContext
from cl_nlp.strategies.ewc.sensitivity import mas_importance
from cl_nlp.strategies.mas import MAS, MASOptions
from tests.strategies.helpers import perturb_, task_data, tiny_classifier, tiny_examples
from tests.strategies.test_state import through_checkpoint

TASK_CLASSES = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.bool)


def brute_force_importance(model, examples, columns_of) -> dict[str, torch.Tensor]:
    """(1/N) Σ_n |∂ Σ_{c in columns_of(n)} z_nc² / ∂θ|, one example and one autograd call at a time."""
    from cl_nlp.batching import collate

    model.eval()
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(len(examples)):
        batch = collate(examples.subset([i]), pad_id=0)
        z = model(batch["input_ids"], batch["attention_mask"]).logits[0]
        norm = sum(z[c] ** 2 for c in columns_of(i))
        for n, g in zip(params, torch.autograd.grad(norm, list(params.values()), allow_unused=True)):
            if g is not None:
                total[n] += g.abs()
    return {n: t / len(examples) for n, t in total.items()}


def assert_close(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    # One scale for all: some parameters' true importance is 0 (attention key biases: softmax ignores
    # a constant shift of every score) and both sides hold only float noise there.
    scale = max(float(v.abs().max()) for v in expected.values())
    for n, value in expected.items():
        torch.testing.assert_close(got[n], value, rtol=1e-4, atol=1e-6 * scale, msg=n)


@pytest.mark.parametrize("batch_size", [4, None])
@pytest.mark.parametrize("scenario", ["class-incremental", "task-incremental"])
def test_importance_is_the_mean_absolute_per_example_gradient_of_the_squared_output_norm(scenario, batch_size, tiny_model):
    model = tiny_classifier(tiny_model)
    perturb_(model, scale=0.05)
    # task 1's examples; one of task 0 mixed in, to see the task-incremental head follow each example
    examples = tiny_examples(tiny_model, [2, 3, 2, 3, 2, 3, 2], task=1)
    examples.task_ids[3] = 0
    names = [n for n, _ in model.named_parameters()]
    got = mas_importance(model, examples, names, pad_id=0, task_classes=TASK_CLASSES, upto=1, scenario=scenario,
                         batch_size=batch_size)
    if scenario == "task-incremental":
        def columns(i):
            return [0, 1] if examples.task_ids[i] == 0 else [2, 3]
    else:
        def columns(i):
            return [0, 1, 2, 3]  # classes of tasks 0 .. 1
    assert_close(got, brute_force_importance(model, examples, columns))
    assert all(float(v.sum()) > 0 for n, v in got.items() if n.startswith("head."))


def test_classes_not_yet_learned_are_left_out_of_the_output(tiny_model):
    model = tiny_classifier(tiny_model)
    examples = tiny_examples(tiny_model, [0, 1, 0, 1], task=0)
    omega = mas_importance(model, examples, ["head.weight", "head.bias"], pad_id=0, task_classes=TASK_CLASSES, upto=0)
    assert float(omega["head.weight"][2:].abs().sum()) == 0.0 and float(omega["head.bias"][:2].abs().sum()) > 0


def test_penalty_gradient_accumulates_importance_and_anchors_to_the_latest_weights(tiny_model, tmp_path):
    model = tiny_classifier(tiny_model)
    ctx = StrategyContext(num_tasks=2, num_classes=4, task_classes=TASK_CLASSES)
    mas = MAS(MASOptions(lambda_=3.0, samples=64), ctx)
    first = task_data(0, tiny_examples(tiny_model, [0, 1, 0, 1, 0]))
    second = task_data(1, tiny_examples(tiny_model, [2, 3, 2, 3], task=1))
    omega = {}
    for task in (first, second):
        mas.before_task(task, model)
        perturb_(model, scale=0.05, seed=task.index + 1)
        omega[task.index] = brute_force_importance(model, task.train,
                                                   lambda i, k=task.index: [c for c in range(4) if TASK_CLASSES[: k + 1, c].any()])
        model = mas.after_task(task, model)
        model.train()
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    perturb_(model, scale=0.05, seed=9)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    mas.adjust_gradients(model, {})
    for n, p in model.named_parameters():
        expected = 1 + 2 * 3.0 * (omega[0][n] + omega[1][n]) * (p.detach() - anchor[n])
        torch.testing.assert_close(p.grad, expected, rtol=1e-4, atol=1e-6, msg=n)
    value = sum(float(((omega[0][n] + omega[1][n]) * (p.detach() - anchor[n]) ** 2).sum()) for n, p in model.named_parameters())
    assert float(mas.penalty_value(model)) == pytest.approx(3.0 * value, rel=1e-4)

    fresh = MAS(MASOptions(lambda_=3.0, samples=64), ctx)
    fresh.load_state_dict(through_checkpoint(mas.state_dict(), tmp_path), model)
    assert float(fresh.penalty_value(model)) == float(mas.penalty_value(model))
    assert mas.figures()["mas/importance_mass"] > 0
