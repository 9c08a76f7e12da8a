"""LwF: the distillation term against a hand computation, one student forward, a frozen teacher, exact restore."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_nlp.batching import collate
from cl_nlp.errors import UserError
from cl_nlp.strategies import StrategyContext
from cl_nlp.strategies.lwf import LwF, LwFOptions
from tests.strategies.helpers import forward_output, perturb_, task_data, tiny_classifier, tiny_examples
from tests.strategies.test_state import through_checkpoint

# three tasks of two classes each
TASK_CLASSES = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.bool)


def kl_by_hand(student: np.ndarray, teacher: np.ndarray, t: float) -> float:
    """Batch mean of T²·Σ_c p_c log(p_c / q_c), p = softmax(teacher/T), q = softmax(student/T), in float64."""
    def softmax(z):
        e = np.exp(z / t - (z / t).max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    p, q = softmax(teacher.astype(np.float64)), softmax(student.astype(np.float64))
    return float(t * t * (p * np.log(p / q)).sum(-1).mean())


def ce_by_hand(logits: np.ndarray, labels: np.ndarray, allowed: np.ndarray) -> float:
    z = np.where(allowed, logits.astype(np.float64), -np.inf)
    m = z.max(-1, keepdims=True)
    log_norm = m[:, 0] + np.log(np.exp(z - m).sum(-1))
    return float((log_norm - z[np.arange(len(labels)), labels]).mean())


def after_two_tasks(tiny_model, scenario, options):
    """An LwF that has finished tasks 0 and 1 (the model moved in between), the teacher's copy, and the model."""
    model = tiny_classifier(tiny_model, num_classes=6).eval()  # no dropout: student logits are reproducible
    lwf = LwF(options, StrategyContext(scenario=scenario, num_tasks=3, num_classes=6, task_classes=TASK_CLASSES))
    for index, labels in ((0, [0, 1, 0, 1]), (1, [2, 3, 2, 3])):
        task = task_data(index, tiny_examples(tiny_model, labels, task=index))
        model = lwf.before_task(task, model)
        perturb_(model, scale=0.05, seed=index + 1)  # "training"
        model = lwf.after_task(task, model)
    teacher = copy.deepcopy(model).eval()
    perturb_(model, scale=0.05, seed=7)  # the student moves away from the teacher on task 2
    return lwf, teacher, model


@pytest.mark.parametrize("scenario", ["class-incremental", "task-incremental"])
def test_loss_is_cross_entropy_plus_distillation_over_the_old_classes(scenario, tiny_model):
    options = LwFOptions(alpha=0.7, temperature=2.5)
    lwf, teacher, model = after_two_tasks(tiny_model, scenario, options)
    batch = collate(tiny_examples(tiny_model, [4, 5, 4, 5, 4], task=2), pad_id=0)
    output = forward_output(model, batch, TASK_CLASSES, scenario)
    loss = lwf.loss(model, batch, output)

    student = output.all_logits.detach().numpy()
    with torch.no_grad():
        old = teacher(batch["input_ids"], batch["attention_mask"]).logits.numpy()
    labels = batch["labels"].numpy()
    allowed = TASK_CLASSES[2].numpy() if scenario == "task-incremental" else np.ones(6, bool)
    expected = ce_by_hand(student, labels, np.broadcast_to(allowed, student.shape))
    if scenario == "class-incremental":  # one softmax over the old model's classes 0-3
        expected += 0.7 * kl_by_hand(student[:, :4], old[:, :4], 2.5)
    else:  # one KL per old task head: classes 0-1, then 2-3
        expected += 0.7 * (kl_by_hand(student[:, :2], old[:, :2], 2.5) + kl_by_hand(student[:, 2:4], old[:, 2:4], 2.5))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert float(loss.detach()) > ce_by_hand(student, labels, np.broadcast_to(allowed, student.shape)) + 1e-4  # the term is there


def test_no_second_student_forward_and_the_teacher_stays_frozen(tiny_model):
    lwf, _, model = after_two_tasks(tiny_model, "class-incremental", LwFOptions())
    calls = {"student": 0, "teacher": 0}
    model.register_forward_hook(lambda *a: calls.__setitem__("student", calls["student"] + 1))
    lwf.teacher.register_forward_hook(lambda *a: calls.__setitem__("teacher", calls["teacher"] + 1))
    batch = collate(tiny_examples(tiny_model, [4, 5, 4, 5], task=2), pad_id=0)
    output = forward_output(model, batch)
    teacher_before = [p.clone() for p in lwf.teacher.parameters()]
    lwf.loss(model, batch, output).backward()
    assert calls == {"student": 1, "teacher": 1}  # the one student forward is the trainer's
    assert not lwf.teacher.training and all(not p.requires_grad and p.grad is None for p in lwf.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, lwf.teacher.parameters()))


def test_first_task_is_plain_cross_entropy(tiny_model):
    model = tiny_classifier(tiny_model, num_classes=6).eval()
    lwf = LwF(LwFOptions(alpha=5.0), StrategyContext(num_classes=6, task_classes=TASK_CLASSES))
    batch = collate(tiny_examples(tiny_model, [0, 1, 0], task=0), pad_id=0)
    output = forward_output(model, batch)
    assert torch.equal(lwf.loss(model, batch, output), F.cross_entropy(output.logits, batch["labels"]))


def test_teacher_is_rebuilt_exactly_from_the_restored_model(tiny_model, tmp_path):
    lwf, teacher, model = after_two_tasks(tiny_model, "class-incremental", LwFOptions())
    restored_model = copy.deepcopy(teacher)  # what the checkpoint after task 1 holds
    fresh = LwF(LwFOptions(), lwf.context)
    fresh.load_state_dict(through_checkpoint(lwf.state_dict(), tmp_path), restored_model)
    assert fresh.tasks_done == 2
    assert all(torch.equal(a, b) for a, b in zip(fresh.teacher.parameters(), lwf.teacher.parameters()))
    batch = collate(tiny_examples(tiny_model, [4, 5, 4, 5], task=2), pad_id=0)
    output = forward_output(model, batch)
    assert torch.equal(fresh.loss(model, batch, output), lwf.loss(model, batch, output))
    with pytest.raises(UserError, match="not the model the teacher was taken from"):
        LwF(LwFOptions(), lwf.context).load_state_dict(lwf.state_dict(), model)  # the moved student is not it
