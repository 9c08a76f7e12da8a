"""Layer freezing: exactly the embeddings and the lowest k layers stay put; unknown encoders are refused."""

import pytest
import torch

from cl_nlp.errors import UserError
from cl_nlp.strategies import StrategyContext, strategy_options
from cl_nlp.strategies.freeze import Freeze
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples
from tests.strategies.trained import learn, snapshot


def frozen_by_name(name: str, k: int) -> bool:
    """Independent of the strategy's module search: BERT's parameter names say where each one sits."""
    if name.startswith("encoder.embeddings."):
        return True
    return any(name.startswith(f"encoder.encoder.layer.{i}.") for i in range(k))


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_training_moves_exactly_the_unfrozen_weights(tiny_model, layers):
    model = tiny_classifier(tiny_model)
    before = snapshot(model)
    strategy = Freeze(strategy_options("freeze", {"layers": layers}), StrategyContext(num_classes=4))
    model = learn(strategy, model, task_data(0, tiny_examples(tiny_model, [0, 1, 2, 3] * 2)),
                  torch.ones(1, 4, dtype=torch.bool))
    after = snapshot(model)
    for name, value in before.items():
        moved = not torch.equal(after[name], value)
        if frozen_by_name(name, layers):
            assert not moved, f"{name} moved though frozen"
        elif name.endswith("weight") and "LayerNorm" not in name:
            assert moved, f"{name} did not train"
    expected = sum(v.numel() for n, v in before.items() if frozen_by_name(n, layers))
    assert strategy.figures()["freeze/frozen_share"] == pytest.approx(expected / sum(v.numel() for v in before.values()))
    assert strategy.figures()["freeze/layers"] == layers


def test_default_freezes_half_the_layers(tiny_model):
    model = tiny_classifier(tiny_model)  # 2 layers
    strategy = Freeze(strategy_options("freeze", {}), StrategyContext(num_classes=4))
    strategy.before_task(None, model)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if frozen_by_name(n, 1)}


def test_too_many_layers_and_unknown_encoders_are_refused(tiny_model):
    strategy = Freeze(strategy_options("freeze", {"layers": 3}), StrategyContext(num_classes=4))
    with pytest.raises(UserError, match="has only 2 layers"):
        strategy.before_task(None, tiny_classifier(tiny_model))
    with pytest.raises(UserError, match="layers must be >= 0"):
        strategy_options("freeze", {"layers": -1})

    from transformers import T5Config, T5EncoderModel

    model = tiny_classifier(tiny_model)
    model.encoder = T5EncoderModel(T5Config(vocab_size=100, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2))
    with pytest.raises(UserError, match="supports BERT-family encoders"):
        Freeze(strategy_options("freeze", {}), StrategyContext()).before_task(None, model)
