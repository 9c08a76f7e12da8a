"""Every listed Avalanche strategy trains a tiny stream in Avalanche's loop and is measured by cl-nlp."""

import pytest
import torch

pytest.importorskip("avalanche", reason="the avalanche extra is not installed (see .ci/avalanche)")

from cl_nlp.avalanche.model import TextClassifierModule, unwrap_classifier  # noqa: E402
from cl_nlp.avalanche.strategies import AVALANCHE_STRATEGIES, PREFIX, AvalancheStrategy  # noqa: E402
from cl_nlp.avalanche.trainer import AvalancheTrainer  # noqa: E402
from cl_nlp.config import load_config  # noqa: E402
from cl_nlp.errors import UserError  # noqa: E402
from cl_nlp.experiment import run_experiment, seed_everything  # noqa: E402
from cl_nlp.models import build_model  # noqa: E402
from cl_nlp.tracking import Tracker  # noqa: E402
from tests.conftest import FAST_TRAIN, SMALL_STREAM  # noqa: E402


@pytest.fixture()
def captured(monkeypatch):
    """The trainer a run builds (to look at its model after the run)."""
    trainers = []

    class Capturing(AvalancheTrainer):
        def fit(self, data, start_stage=0):
            trainers.append(self)
            return super().fit(data, start_stage)

    monkeypatch.setattr(AvalancheStrategy, "trainer_cls", property(lambda self: Capturing))
    return trainers


def accuracy(model: torch.nn.Module, experience) -> float:
    module = TextClassifierModule(model).eval()
    correct = 0
    with torch.no_grad():
        for x, y, _ in torch.utils.data.DataLoader(experience.dataset, batch_size=7):
            correct += int((module(x).argmax(-1) == y).sum())
    return correct / len(experience.dataset)


@pytest.mark.parametrize("name", sorted(AVALANCHE_STRATEGIES))
def test_strategy_trains_and_cl_nlp_evaluates_the_trained_model(name, tiny_model, tmp_path, captured):
    cfg = load_config(None, [*SMALL_STREAM, *FAST_TRAIN, "tracking.enabled=false", "eval.probes=false"],
                      strategy=PREFIX + name, model=tiny_model)
    cfg.output = str(tmp_path)
    outcome = run_experiment(cfg, tracker=Tracker(), echo=lambda line: None, show_progress=False)
    (trainer,) = captured
    assert outcome.results.stages_done == 2
    # The evaluator measured the model Avalanche trained (GDumb trains a fresh copy every task).
    assert trainer.model is unwrap_classifier(trainer.avalanche.model)
    seed_everything(cfg.seed)
    initial = build_model(tiny_model, trainer.model.head.out_features)
    assert not torch.equal(initial.head.weight, trainer.model.head.weight.cpu())
    live = outcome.results.matrix("live")
    tests = trainer.benchmark.test_stream
    for j in range(2):  # an independent pass over Avalanche's padded test data; one tie may flip
        assert abs(live[1][j] - accuracy(trainer.model, tests[j])) <= 1 / len(tests[j].dataset) + 1e-9


def test_resuming_mid_stream_is_refused(tiny_model, tmp_path, captured):
    cfg = load_config(None, [*SMALL_STREAM, *FAST_TRAIN, "tracking.enabled=false"], strategy=PREFIX + "Naive",
                      model=tiny_model)
    cfg.output = str(tmp_path)
    run_experiment(cfg, tracker=Tracker(), echo=lambda line: None, show_progress=False)
    with pytest.raises(UserError, match="cannot resume"):
        captured[0].fit([], start_stage=1)
