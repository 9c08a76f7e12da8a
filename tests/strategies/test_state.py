"""Strategy state survives the checkpoint format (safetensors + JSON) and restores behaviour."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cl_nlp.runtime.checkpoint import join_tensors, split_tensors
from cl_nlp.strategies import StrategyContext, build_strategy
from tests.strategies.helpers import perturb_, task_data, tiny_classifier, tiny_examples


def through_checkpoint(state, folder):
    tree, tensors = split_tensors(state)
    save_file(tensors, str(folder / "s.safetensors"))
    (folder / "s.json").write_text(json.dumps(tree))
    return join_tensors(json.loads((folder / "s.json").read_text()), load_file(folder / "s.safetensors"))


@pytest.mark.parametrize("name,options", [("ewc", {"fisher_samples": 4}), ("replay", {"size": 5, "per_batch": 2}),
                                          ("joint", {}), ("lora-merge", {"merge": "average", "r": 2}), ("lwf", {}),
                                          ("agem", {"size": 5, "memory_batch": 2}), ("der", {"size": 5, "per_batch": 2}),
                                          ("derpp", {"size": 5, "per_batch": 2}), ("er-ace", {"size": 5, "per_batch": 2}),
                                          ("mas", {"samples": 4}),
                                          ("seq-star", {"warmup_epochs": 1}), ("o-lora", {"r": 2}), ("freeze", {})])
def test_state_round_trip_restores_behaviour(name, options, tiny_model, tmp_path):
    ctx = StrategyContext(num_classes=4, seed=3)
    strategy, fresh = build_strategy(name, options, ctx), build_strategy(name, options, ctx)
    model = tiny_classifier(tiny_model)
    task = task_data(0, tiny_examples(tiny_model, [0, 1, 2, 3, 0, 1]))
    model = strategy.before_task(task, model)
    model = strategy.after_task(task, model)
    fresh.load_state_dict(through_checkpoint(strategy.state_dict(), tmp_path), model)

    nxt = task_data(1, tiny_examples(tiny_model, [2, 3, 2, 3], task=1))
    assert fresh.training_examples(nxt).input_ids == strategy.training_examples(nxt).input_ids
    batches = [nxt.train.subset([0, 1]), nxt.train.subset([2, 3])]
    mixed = [b.input_ids for b in strategy.train_batches(nxt, iter(batches))]
    assert [b.input_ids for b in fresh.train_batches(nxt, iter(batches))] == mixed  # replay draws the same
    perturb_(model)
    p1, p2 = strategy.penalty(model, {}), fresh.penalty(model, {})
    assert (p1 is None) == (p2 is None) and (p1 is None or torch.allclose(p1, p2))
    adjusted = []
    for s in (strategy, fresh):  # the same gradient edit (EWC's λF(θ−θ*)) from the restored state
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        torch.manual_seed(0)  # A-GEM's memory batch runs in training mode: the same dropout masks for both
        s.adjust_gradients(model, {})
        adjusted.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*adjusted))
    if name in ("ewc", "mas"):
        assert not all(torch.equal(g, torch.ones_like(g)) for g in adjusted[0])  # the edit happened
    if name == "lora-merge":
        assert all(torch.equal(fresh.base[k], v) for k, v in strategy.base.items())
        assert all(torch.equal(fresh.deltas[0][k], v) for k, v in strategy.deltas[0].items())
    if name == "o-lora":
        assert all(torch.equal(fresh.subspaces[0][k], v) for k, v in strategy.subspaces[0].items())
    if name == "seq-star":
        assert fresh.warmed_up and strategy.warmed_up  # a resumed run never warms up again
    assert np.isfinite(list(strategy.figures().values())).all()
