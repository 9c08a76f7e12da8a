"""Joint training sees every task so far, and the trainer sizes its epoch from the strategy."""

import numpy as np
import torch

from cl_nlp.config import TrainConfig
from cl_nlp.strategies import Strategy, StrategyContext
from cl_nlp.strategies.joint import Joint
from cl_nlp.tracking import Tracker
from cl_nlp.training import Trainer
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples


def test_joint_trains_on_the_union_of_tasks_so_far(tiny_model):
    tasks = [task_data(i, tiny_examples(tiny_model, [2 * i, 2 * i + 1] * (i + 2), task=i)) for i in range(3)]
    joint = Joint(context=StrategyContext())
    sizes = []
    for t in tasks:
        examples = joint.training_examples(t)
        assert joint.training_examples(t).input_ids == examples.input_ids  # asking twice changes nothing
        sizes.append(len(examples))
        assert sorted(set(examples.task_ids.tolist())) == list(range(t.index + 1))
        joint.after_task(t, model=None)
    assert sizes == [4, 4 + 6, 4 + 6 + 8]
    restored = Joint(context=StrategyContext())
    restored.load_state_dict(joint.state_dict(), model=None)
    assert restored.training_examples(tasks[2]).input_ids == joint.training_examples(tasks[2]).input_ids


class CountingStrategy(Strategy):
    """Trains on a fixed example set and counts the optimisation steps through ``penalty``."""

    def __init__(self, examples):
        super().__init__()
        self.examples, self.steps, self.trained_on = examples, 0, []

    def training_examples(self, task):
        return self.examples

    def train_batches(self, task, batches):
        for b in batches:
            self.trained_on.extend(b.labels.tolist())
            yield b

    def penalty(self, model, batch):
        self.steps += 1
        return None


def test_trainer_builds_batches_and_schedule_from_training_examples(tiny_model):
    model = tiny_classifier(tiny_model)
    own = tiny_examples(tiny_model, [0, 1] * 2)
    other = tiny_examples(tiny_model, [2, 3] * 5)  # 10 examples the task itself does not hold
    strategy = CountingStrategy(other)
    cfg = TrainConfig(epochs=2, batch_size=4, device="cpu")
    trainer = Trainer(model, strategy, evaluator=None, tracker=Tracker(), cfg=cfg,
                      task_classes=torch.ones(1, 4, dtype=torch.bool), scenario="class-incremental", pad_id=0)
    trainer.train_task(task_data(0, own))
    assert strategy.steps == 2 * 3  # ceil(10 / 4) batches per epoch, two epochs
    assert sorted(strategy.trained_on) == sorted(np.tile(other.labels, 2).tolist())
