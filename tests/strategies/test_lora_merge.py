"""LoRA-merge: merging keeps the function; combined deltas equal the hand-computed weights."""

import pytest
import torch

from cl_nlp.batching import collate
from cl_nlp.config import TrainConfig
from cl_nlp.errors import UserError
from cl_nlp.strategies import Strategy, StrategyContext, strategy_options
from cl_nlp.strategies.lora_merge import LoRAMerge, LoRAMergeOptions
from cl_nlp.strategies.merging import lora_layers
from cl_nlp.tracking import Tracker
from cl_nlp.training import Trainer
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples


def randomize_adapter_(model, seed):
    """A trained-looking adapter: B is zero at initialisation, which would make every test trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def hand_deltas(model, alpha, r):
    """(alpha / r)·B·A per adapted layer, from the adapter's own factor matrices."""
    return {f"{name}.weight": (alpha / r) * layer.lora_B["default"].weight.detach() @ layer.lora_A["default"].weight.detach()
            for name, layer in lora_layers(model.encoder).items()}


def logits(model, examples):
    model.eval()
    b = collate(examples, pad_id=0)
    with torch.no_grad():
        return model(b["input_ids"], b["attention_mask"]).logits


@pytest.mark.parametrize("merge", ["sequential", "average"])
def test_merged_model_gives_the_unmerged_logits(tiny_model, merge):
    model = tiny_classifier(tiny_model)
    examples = tiny_examples(tiny_model, [0, 1, 2, 3, 0, 1])
    strategy = LoRAMerge(LoRAMergeOptions(r=4, alpha=8.0, merge=merge), StrategyContext(num_classes=4))
    model = strategy.before_task(task_data(0, examples), model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    randomize_adapter_(model, 0)
    before = logits(model, examples)
    model = strategy.after_task(task_data(0, examples), model)
    assert not lora_layers(model.encoder)  # a plain encoder again
    after = logits(model, examples)
    assert (after - before).abs().max().item() < 1e-5
    assert not torch.allclose(after, logits(tiny_classifier(tiny_model), examples), atol=1e-3)  # the adapter mattered


@pytest.mark.parametrize("merge,coefficient", [("average", 1.0), ("task_arithmetic", 0.3), ("sequential", 1.0)])
def test_two_tasks_combine_as_the_formula_says(tiny_model, merge, coefficient):
    model = tiny_classifier(tiny_model)
    w0 = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}
    examples = tiny_examples(tiny_model, [0, 1])
    strategy = LoRAMerge(strategy_options("lora-merge", {"r": 2, "alpha": 4, "merge": merge, "coefficient": coefficient}),
                         StrategyContext(num_classes=4))
    deltas = []
    for t in range(2):
        model = strategy.before_task(task_data(t, examples), model)
        if merge != "sequential":  # every adapter trains on the pretrained weights
            for name, layer in lora_layers(model.encoder).items():
                assert torch.equal(layer.get_base_layer().weight, w0[f"{name}.weight"])
        randomize_adapter_(model, t + 1)
        deltas.append(hand_deltas(model, 4, 2))
        model = strategy.after_task(task_data(t, examples), model)
    scale = {"average": 0.5, "task_arithmetic": coefficient, "sequential": 1.0}[merge]
    weights = dict(model.encoder.named_parameters())
    assert set(deltas[0]) == {n for n in w0 if n.endswith(("query.weight", "value.weight"))}
    for name in deltas[0]:
        expected = w0[name] + scale * (deltas[0][name] + deltas[1][name])
        assert torch.allclose(weights[name], expected, atol=1e-6), name
    untouched = "encoder.layer.0.attention.self.key.weight"
    assert torch.equal(weights[untouched], w0[untouched])
    assert len(strategy.deltas) == (0 if merge == "sequential" else 2)


def test_coefficient_only_with_task_arithmetic():
    from cl_nlp.errors import UserError

    with pytest.raises(UserError, match="coefficient applies"):
        strategy_options("lora-merge", {"coefficient": 0.5})


def test_unknown_target_modules_is_a_user_error(tiny_model):
    from cl_nlp.errors import UserError

    strategy = LoRAMerge(LoRAMergeOptions(target_modules=["q_lin"]), StrategyContext(num_classes=4))
    with pytest.raises(UserError, match="target_modules"):
        strategy.before_task(None, tiny_classifier(tiny_model))


class FixedRate(Strategy):
    """Plain fine-tuning at a learning rate of the strategy's choosing."""

    def __init__(self, lr):
        super().__init__()
        self.lr = lr

    def learning_rate(self, task, lr):
        return self.lr


@pytest.mark.parametrize("lr", [0.0, 1e-2])
def test_trainer_trains_at_the_rate_the_strategy_names(tiny_model, lr):
    model = tiny_classifier(tiny_model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(model, FixedRate(lr), evaluator=None, tracker=Tracker(),
                      cfg=TrainConfig(epochs=1, batch_size=4, lr=1e-3, warmup_ratio=0.0, device="cpu"),
                      context=StrategyContext(num_classes=4, task_classes=torch.ones(1, 4, dtype=torch.bool)))
    trainer.train_task(task_data(0, tiny_examples(tiny_model, [0, 1, 2, 3] * 2)))
    moved = max(float((p.detach() - before[n]).abs().max()) for n, p in trainer.model.named_parameters())
    assert (moved == 0.0) if lr == 0.0 else (moved > 1e-4)  # train.lr=1e-3 is ignored either way


def test_lora_merge_trains_at_its_own_rate_unless_told_to_keep_train_lr():
    task = None
    assert LoRAMerge(strategy_options("lora-merge", {})).learning_rate(task, 1e-4) == 1e-3
    assert LoRAMerge(strategy_options("lora-merge", {"lr": 5e-4})).learning_rate(task, 1e-4) == 5e-4
    assert LoRAMerge(strategy_options("lora-merge", {"lr": None})).learning_rate(task, 1e-4) == 1e-4
    with pytest.raises(UserError, match="lr must be > 0"):
        strategy_options("lora-merge", {"lr": 0})
