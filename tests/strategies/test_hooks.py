"""The trainer keeps the hook contract: one forward pass into the loss hook, then backward, then
``adjust_gradients``, then clipping and the step (a real :class:`~cl_nlp.training.Trainer`)."""

import math

import torch

from cl_nlp.config import TrainConfig
from cl_nlp.strategies import ForwardOutput, Strategy, StrategyContext, task_loss
from cl_nlp.tracking import Tracker
from cl_nlp.training import Trainer, make_accelerator
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples

TASK_CLASSES = torch.tensor([[True, True, False, False], [False, False, True, True]])


def trainer_for(strategy, tiny_model, scenario="class-incremental", **train):
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 4, "device": "cpu", **train})
    return Trainer(tiny_classifier(tiny_model), strategy, None, Tracker(), cfg, TASK_CLASSES, scenario, pad_id=0,
                   accelerator=make_accelerator(cfg), show_progress=False)


class Recording(Strategy):
    """Checks what the loss hook is handed, and trains on a loss that moves nothing."""

    def __init__(self):
        super().__init__(context=StrategyContext(num_classes=4))
        self.outputs = []

    def loss(self, model, batch, output):
        self.outputs.append((output, batch))
        return 0.0 * task_loss(output, batch)


def test_loss_hook_gets_the_forward_output_and_its_loss_is_the_one_trained(tiny_model):
    strategy = Recording()
    trainer = trainer_for(strategy, tiny_model, scenario="task-incremental", weight_decay=0.0)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train_task(task_data(1, tiny_examples(tiny_model, [2, 3, 2, 3, 2, 3], task=1)))
    assert len(strategy.outputs) == 2  # 6 examples, batches of 4
    for output, batch in strategy.outputs:
        assert isinstance(output, ForwardOutput)
        n = len(batch["labels"])
        assert output.all_logits.shape == (n, 4) and output.all_logits.dtype == torch.float32
        assert torch.isfinite(output.all_logits).all()
        # task-incremental: the loss's logits are the task's own head (task 1 = classes 2, 3)
        assert torch.isinf(output.logits[:, :2]).all() and torch.equal(output.logits[:, 2:], output.all_logits[:, 2:])
        assert output.features.shape == (n, 64) and output.features.grad_fn is not None
    # A zero loss, no weight decay: AdamW moves nothing, so the hook's loss is what was backpropagated.
    assert all(torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())


class Overwrites(Strategy):
    """Replaces every gradient by 1 after backward: clipping must see (and scale) exactly that."""

    def __init__(self):
        super().__init__(context=StrategyContext(num_classes=4))
        self.calls = 0

    def adjust_gradients(self, model, batch):
        self.calls += 1
        for p in model.parameters():
            assert p.grad is not None  # backward has run
            p.grad.fill_(1.0)


def test_adjust_gradients_runs_after_backward_and_before_clipping(tiny_model, monkeypatch):
    strategy = Overwrites()
    trainer = trainer_for(strategy, tiny_model, max_grad_norm=0.5)
    norms = []
    real_clip = trainer.accelerator.clip_grad_norm_

    def clip(parameters, max_norm):
        parameters = list(parameters)
        norms.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in parameters)))
        return real_clip(parameters, max_norm)

    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", clip)
    trainer.train_task(task_data(0, tiny_examples(tiny_model, [0, 1, 0, 1, 0, 1, 0, 1])))
    count = sum(p.numel() for p in trainer.model.parameters())
    assert strategy.calls == 2 and norms == [math.sqrt(count)] * 2
