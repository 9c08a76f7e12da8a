"""ER-ACE: the asymmetric cross-entropy's masks against a hand computation, and the buffer filled after each step."""

import numpy as np
import pytest
import torch

from cl_nlp.batching import Examples, collate
from cl_nlp.runtime.distributed import shard
from cl_nlp.strategies import StrategyContext
from cl_nlp.strategies.er_ace import ERACE, ERACEOptions
from tests.strategies.helpers import forward_output, task_data, tiny_classifier

# three tasks over six classes: {0, 1}, {2, 3}, {4, 5}
TASK_CLASSES = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.bool)


def items(ids, labels, task):
    n = len(ids)
    return Examples([[101, int(i), 102] for i in ids], np.asarray(labels, np.int64), np.full(n, task, np.int64))


def ce_over(logits: np.ndarray, label: int, columns: list[int]) -> float:
    """−log softmax over ``columns`` only, at ``label``, in float64."""
    z = logits.astype(np.float64)[columns]
    return float(np.log(np.exp(z - z.max()).sum()) + z.max() - logits[label])


@pytest.mark.parametrize("scenario", ["class-incremental", "task-incremental"])
def test_incoming_rows_see_their_batch_classes_and_replayed_rows_the_seen_classes(scenario, tiny_model):
    ctx = StrategyContext(scenario=scenario, num_tasks=3, num_classes=6, task_classes=TASK_CLASSES, seed=1)
    ace = ERACE(ERACEOptions(size=10, per_batch=3), ctx)
    ace.buffer.add(items([500, 501, 502, 503], [0, 1, 1, 0], task=0))
    model = tiny_classifier(tiny_model, num_classes=6).eval()
    task = task_data(1, items([7, 8, 9], [3, 3, 3], task=1))  # only class 3 of task 1's {2, 3} in this batch
    ace.before_task(task, model)
    batches = ace.train_batches(task, iter([task.train]))
    mixed = next(batches)
    batch = collate(mixed, pad_id=0)
    output = forward_output(model, batch, TASK_CLASSES, scenario)
    loss = ace.loss(model, batch, output)

    z = output.all_logits.detach().numpy()
    labels = mixed.labels
    incoming = [ce_over(z[i], labels[i], [3]) for i in range(3)]  # softmax over {3}: zero loss
    seen = [0, 1] if scenario == "task-incremental" else [0, 1, 2, 3]  # TIL: each replayed row's own head
    replayed = [ce_over(z[i], labels[i], seen) for i in range(3, 6)]
    assert float(loss.detach()) == pytest.approx(np.mean(incoming) + np.mean(replayed), rel=1e-5, abs=1e-7)
    assert np.mean(incoming) == pytest.approx(0.0, abs=1e-7)
    assert mixed.extra["replayed"].tolist() == [False] * 3 + [True] * 3
    # after the step the incoming examples join the buffer (it had room)
    assert next(batches, None) is None
    assert sorted(ids[1] for ids in ace.buffer.examples().input_ids) == [7, 8, 9, 500, 501, 502, 503]


def test_incoming_cross_entropy_ranges_over_every_class_present(tiny_model):
    ctx = StrategyContext(num_tasks=3, num_classes=6, task_classes=TASK_CLASSES)
    ace = ERACE(ERACEOptions(size=10, per_batch=3), ctx)
    model = tiny_classifier(tiny_model, num_classes=6).eval()
    task = task_data(2, items([7, 8, 9, 10], [4, 5, 5, 4], task=2))
    mixed = next(ace.train_batches(task, iter([task.train])))  # empty buffer: no replayed rows
    batch = collate(mixed, pad_id=0)
    output = forward_output(model, batch, TASK_CLASSES)
    z = output.all_logits.detach().numpy()
    expected = np.mean([ce_over(z[i], mixed.labels[i], [4, 5]) for i in range(4)])
    assert float(ace.loss(model, batch, output)) == pytest.approx(expected, rel=1e-5)


def test_data_parallel_slices_add_up(tiny_model):
    ctx = StrategyContext(num_tasks=3, num_classes=6, task_classes=TASK_CLASSES)
    ace = ERACE(ERACEOptions(size=10, per_batch=3), ctx)
    ace.buffer.add(items([500, 501, 502], [0, 1, 2], task=0))
    model = tiny_classifier(tiny_model, num_classes=6).eval()
    task = task_data(2, items([7, 8, 9, 10, 11], [4, 5, 5, 4, 4], task=2))
    mixed = next(ace.train_batches(task, iter([task.train])))
    whole = collate(mixed, pad_id=0)
    expected = ace.loss(model, whole, forward_output(model, whole, TASK_CLASSES))
    total = 0.0
    for rank in range(3):
        part, weight = shard(mixed, rank, 3)
        batch = collate(part, pad_id=0)
        total = total + weight * ace.loss(model, batch, forward_output(model, batch, TASK_CLASSES))
    assert float(total / 3) == pytest.approx(float(expected), rel=1e-5)
