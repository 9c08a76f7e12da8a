"""The trainer on its own: the order it calls the strategy's hooks in, the stage reports it
returns (timings included) and the metrics it logs, with nothing written into the results'
timings (that is the recipe's job, tests/test_experiment.py)."""

from __future__ import annotations

import torch

from cl_nlp.config import TrainConfig
from cl_nlp.evaluation.evaluator import Evaluator
from cl_nlp.evaluation.results import Results
from cl_nlp.run_context import RunContext
from cl_nlp.strategies import Strategy
from cl_nlp.tracking import Tracker
from cl_nlp.training import Trainer, make_accelerator
from tests.strategies.helpers import task_data, tiny_classifier, tiny_examples

TASK_CLASSES = torch.tensor([[True, True, False, False], [False, False, True, True]])


class HookLog(Strategy):
    """Plain fine-tuning that writes down every hook call, in order."""

    def __init__(self, context: RunContext):
        super().__init__(context=context)
        self.calls: list[str] = []

    def before_task(self, task, model):
        self.calls.append(f"before_task:{task.name}")
        return model

    def learning_rate(self, task, lr):
        self.calls.append("learning_rate")
        return lr

    def training_examples(self, task):
        self.calls.append("training_examples")
        return task.train

    def train_batches(self, task, batches):
        self.calls.append("train_batches")
        yield from batches

    def loss(self, model, batch, output):
        self.calls.append("loss")
        return super().loss(model, batch, output)

    def adjust_gradients(self, model, batch):
        self.calls.append("adjust_gradients")

    def after_task(self, task, model):
        self.calls.append(f"after_task:{task.name}")
        return model

    def figures(self):
        return {"calls": float(len(self.calls))}


class Logged(Tracker):
    def __init__(self):
        super().__init__()
        self.logged: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, values, step):
        self.logged.append((step, dict(values)))


def fitted(tiny_model):
    data = [task_data(0, tiny_examples(tiny_model, [0, 1] * 3, task=0), "first"),
            task_data(1, tiny_examples(tiny_model, [2, 3] * 3, task=1), "second")]
    context = RunContext("class-incremental", 2, 4, seed=0, batch_size=4, task_classes=TASK_CLASSES)
    results = Results([d.name for d in data], context.scenario)
    evaluator = Evaluator(results, [d.test for d in data], context, batch_size=8)
    cfg = TrainConfig(epochs=1, batch_size=4, device="cpu")
    strategy, tracker = HookLog(context), Logged()
    trainer = Trainer(tiny_classifier(tiny_model), strategy, evaluator, tracker, cfg, context,
                      make_accelerator(cfg), show_progress=False)
    seen = []
    trainer.stage_callbacks.append(lambda report: seen.append(report.stage))
    return trainer.fit(data), trainer, strategy, tracker, results, seen


def test_hooks_run_in_the_contracts_order_once_per_task(tiny_model):
    _, _, strategy, _, _, _ = fitted(tiny_model)
    per_step = ["loss", "adjust_gradients"] * 2  # 6 examples in batches of 4: two steps
    expected = []
    for name in ("first", "second"):
        # The examples come first: the LR schedule is sized from them.
        expected += [f"before_task:{name}", "training_examples", "learning_rate", "train_batches", *per_step,
                     f"after_task:{name}"]
    assert strategy.calls == expected


def test_stage_reports_carry_the_timings_and_the_results_get_none_from_the_trainer(tiny_model):
    reports, trainer, _, _, results, seen = fitted(tiny_model)
    assert [r.stage for r in reports] == [0, 1, 2] and seen == [0, 1, 2]
    assert reports[0].task == "" and reports[0].train_seconds == 0.0 and reports[0].eval_seconds > 0
    assert [r.task for r in reports[1:]] == ["first", "second"]
    assert all(r.train_seconds > 0 and r.eval_seconds > 0 for r in reports[1:])
    assert results.timings == {}  # the recipe records timings, not the loop
    assert results.stages_done == 2  # the evaluator's own bookkeeping
    assert trainer.global_step == 4


def test_each_stage_logs_its_metrics_at_its_step(tiny_model):
    reports, _, _, tracker, results, _ = fitted(tiny_model)
    stage_logs = [(step, values) for step, values in tracker.logged if "acc_avg" in values]
    assert [step for step, _ in stage_logs] == [1, 2]
    step, values = stage_logs[-1]
    live = results.matrix("live")
    # Independent of the metric code: the row of the matrix, and ACC as its plain mean.
    assert values["acc/first"] == live[1, 0] and values["acc/second"] == live[1, 1]
    assert abs(values["acc_avg"] - (live[1, 0] + live[1, 1]) / 2) < 1e-12
    assert values["strategy/calls"] > 0 and values["time/train_seconds"] == reports[2].train_seconds
    assert any("train/loss" in values for _, values in tracker.logged)
