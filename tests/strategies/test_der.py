"""DER / DER++: the loss against a hand computation from the stored logits, storage after the step, data-parallel slices."""

import numpy as np
import pytest
import torch

from cl_nlp.batching import Examples, collate
from cl_nlp.runtime.distributed import shard
from cl_nlp.strategies import StrategyContext
from cl_nlp.strategies.der import DER, DEROptions, DERPlusPlus, DERPPOptions
from tests.strategies.helpers import forward_output, task_data, tiny_classifier
from tests.strategies.test_state import through_checkpoint


def items(ids, labels, task=0):
    n = len(ids)
    return Examples([[101, int(i), 102] for i in ids], np.asarray(labels, np.int64), np.full(n, task, np.int64))


def stored_logits_of(token: int) -> np.ndarray:
    """The logits the test pretends example ``token`` was stored with."""
    return np.array([0.1 * token, -0.2 * token, 1.0, 0.05 * token * token], np.float32)


def ce_rows(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    m = z.max(-1, keepdims=True)
    return m[:, 0] + np.log(np.exp(z - m).sum(-1)) - z[np.arange(len(labels)), labels]


def strategy(plus: bool, size=10):
    ctx = StrategyContext(num_classes=4, seed=2)
    if plus:
        return DERPlusPlus(DERPPOptions(alpha=0.3, beta=0.8, size=size, per_batch=2), ctx)
    return DER(DEROptions(alpha=0.3, size=size, per_batch=2), ctx)


def prefilled(plus: bool, size=10):
    der = strategy(plus, size)
    old = items([1000, 1001, 1002, 1003], [0, 1, 0, 1])
    der.buffer.add(Examples(old.input_ids, old.labels, old.task_ids,
                            extra={"stored_logits": np.stack([stored_logits_of(t) for t in range(1000, 1004)])}))
    return der


@pytest.mark.parametrize("plus", [False, True])
def test_loss_is_new_cross_entropy_plus_logit_matching(plus, tiny_model):
    der = prefilled(plus)
    model = tiny_classifier(tiny_model).eval()
    task = task_data(1, items([7, 8, 9], [2, 3, 2], task=1))
    der.before_task(task, model)
    batches = der.train_batches(task, iter([task.train]))
    mixed = next(batches)
    batch = collate(mixed, pad_id=0)
    output = forward_output(model, batch)
    loss = der.loss(model, batch, output)

    z = output.all_logits.detach().numpy()
    tokens = [ids[1] for ids in mixed.input_ids]
    labels = mixed.labels
    assert tokens[:3] == [7, 8, 9] and all(t >= 1000 for t in tokens[3:])
    assert len(tokens) == (7 if plus else 5)
    expected = ce_rows(z[:3], labels[:3]).mean()
    stored = np.stack([stored_logits_of(t) for t in tokens[3:5]])
    expected += 0.3 * ((z[3:5].astype(np.float64) - stored) ** 2).mean()  # mean over rows and classes
    if plus:
        expected += 0.8 * ce_rows(z[5:7], labels[5:7]).mean()
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert mixed.extra["replayed"].tolist() == [False] * 3 + [True] * (4 if plus else 2)

    # After the step (the generator resumes) the new examples are stored with this step's logits.
    assert next(batches, None) is None
    stored_now = {ids[1]: row for ids, row in zip(der.buffer.examples().input_ids, der.buffer.examples().extra["stored_logits"])}
    for row, token in enumerate([7, 8, 9]):
        np.testing.assert_array_equal(stored_now[token], z[row])


@pytest.mark.parametrize("plus", [False, True])
def test_data_parallel_slices_add_up_to_the_whole_batch_loss(plus, tiny_model):
    der = prefilled(plus)
    model = tiny_classifier(tiny_model).eval()
    task = task_data(1, items([7, 8, 9, 10, 11], [2, 3, 2, 3, 2], task=1))
    mixed = next(der.train_batches(task, iter([task.train])))
    whole = collate(mixed, pad_id=0)
    expected = der.loss(model, whole, forward_output(model, whole))
    total = 0.0
    for rank in range(3):  # what three processes compute, as the trainer weights them
        part, weight = shard(mixed, rank, 3)
        batch = collate(part, pad_id=0)
        total = total + weight * der.loss(model, batch, forward_output(model, batch))
    assert float(total / 3) == pytest.approx(float(expected), rel=1e-5)


def test_first_task_fills_the_buffer_during_training_and_state_restores(tiny_model, tmp_path):
    der = strategy(plus=True, size=3)
    model = tiny_classifier(tiny_model).eval()
    task = task_data(0, items(range(20, 32), [0, 1] * 6))
    der.before_task(task, model)
    batches = [task.train.subset(range(s, s + 4)) for s in range(0, 12, 4)]
    sizes = []
    for mixed in der.train_batches(task, iter(batches)):
        batch = collate(mixed, pad_id=0)
        der.loss(model, batch, forward_output(model, batch))
        sizes.append(len(mixed))
    assert sizes == [4, 8, 8]  # replay (2 + 2 from the buffer) from the second batch of the first task on
    assert len(der.buffer) == 3 and der.buffer.seen == 12
    fresh = strategy(plus=True, size=3)
    fresh.load_state_dict(through_checkpoint(der.state_dict(), tmp_path), model)
    assert fresh.buffer.examples().input_ids == der.buffer.examples().input_ids
    np.testing.assert_array_equal(fresh.buffer.examples().extra["stored_logits"], der.buffer.examples().extra["stored_logits"])
    assert fresh.buffer.sample(2).input_ids == der.buffer.sample(2).input_ids
    figures = der.figures()
    assert figures["derpp/buffer/t0"] == 3.0 and np.isfinite(figures["derpp/logit_term_mean"])
    assert torch.is_tensor(through_checkpoint(der.state_dict(), tmp_path)["buffer"]["examples"]["extra"]["stored_logits"])
