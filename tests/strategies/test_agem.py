"""A-GEM: the projection against a brute-force computation, the reference gradient from the memory, seeded draws."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_nlp.batching import collate
from cl_nlp.strategies import StrategyContext
from cl_nlp.strategies.agem import AGEM, AGEMOptions, project
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples
from tests.strategies.test_state import through_checkpoint


def projected_by_hand(g: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A-GEM on flat float64 vectors, dot products as explicit sums."""
    dot = sum(float(a) * float(b) for a, b in zip(g, r))
    if dot >= 0:
        return g
    return g - dot / sum(float(b) * float(b) for b in r) * r


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_projection_matches_the_formula_on_a_flattened_vector(sign):
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    grads = [torch.randn(s, generator=gen) for s in shapes]
    refs = [sign * g + 0.5 * torch.randn(s, generator=gen) for g, s in zip(grads, shapes)]  # agreeing, then opposed
    flat_g = torch.cat([g.reshape(-1) for g in grads]).double().numpy()
    flat_r = torch.cat([r.reshape(-1) for r in refs]).double().numpy()
    expected = projected_by_hand(flat_g, flat_r)
    conflict = project(grads, [r.clone() for r in refs])
    assert bool(conflict) == (sign < 0)
    got = torch.cat([g.reshape(-1) for g in grads]).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if sign < 0:  # after projection g no longer opposes g_ref
        assert float(np.dot(got, flat_r)) == pytest.approx(0.0, abs=1e-4)


def filled_agem(tiny_model, seed=3):
    ctx = StrategyContext(num_classes=4, seed=seed)
    agem = AGEM(AGEMOptions(size=6, memory_batch=3), ctx)
    first = task_data(0, tiny_examples(tiny_model, [0, 1, 0, 1, 0, 1, 0, 1]))
    agem.after_task(first, None)
    return agem


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_adjust_gradients_projects_the_batch_gradient_against_the_memory_gradient(sign, tiny_model):
    agem = filled_agem(tiny_model)
    model = tiny_classifier(tiny_model).eval()  # no dropout: the reference gradient is reproducible
    params = [p for p in model.parameters() if p.requires_grad]

    # The memory batch adjust_gradients will draw, and its gradient by ordinary backward on a copy.
    rng_state = copy.deepcopy(agem.buffer.rng.bit_generator.state)
    memory = agem.buffer.sample(3)
    agem.buffer.rng.bit_generator.state = rng_state
    twin = copy.deepcopy(model)
    batch = collate(memory, pad_id=0)
    F.cross_entropy(twin(batch["input_ids"], batch["attention_mask"]).logits, batch["labels"]).backward()
    ref = torch.cat([p.grad.reshape(-1) for p in twin.parameters() if p.requires_grad]).double().numpy()

    # The current batch's gradient: noise that agrees with (sign 1) or opposes (sign -1) g_ref.
    gen = torch.Generator().manual_seed(5)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = sign * torch.from_numpy(ref[offset:offset + n]).float().view_as(p) + 1e-3 * torch.randn(p.shape, generator=gen)
        offset += n
    before = torch.cat([p.grad.reshape(-1) for p in params]).double().numpy()

    agem.adjust_gradients(model, {})
    after = torch.cat([p.grad.reshape(-1) for p in params]).double().numpy()
    np.testing.assert_allclose(after, projected_by_hand(before, ref), rtol=1e-4, atol=1e-7)
    assert (sign > 0) == np.array_equal(after, before)  # agreeing gradients are left exactly as they were
    assert agem.figures()["agem/projected_share"] == (0.0 if sign > 0 else 1.0)


def test_memory_draws_are_seeded_and_survive_a_checkpoint(tiny_model, tmp_path):
    a, b = filled_agem(tiny_model, seed=3), filled_agem(tiny_model, seed=3)
    assert a.buffer.sample(3).input_ids == b.buffer.sample(3).input_ids
    fresh = AGEM(AGEMOptions(size=6, memory_batch=3), StrategyContext(num_classes=4, seed=99))
    fresh.load_state_dict(through_checkpoint(a.state_dict(), tmp_path), None)
    assert fresh.buffer.sample(3).input_ids == a.buffer.sample(3).input_ids


def test_no_memory_no_change(tiny_model):
    agem = AGEM(AGEMOptions(size=6, memory_batch=3), StrategyContext(num_classes=4))
    model = tiny_classifier(tiny_model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    agem.adjust_gradients(model, {})
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())
