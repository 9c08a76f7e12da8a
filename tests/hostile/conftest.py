"""The earlier run that hostile cases damage, resume, or must leave alone."""

from __future__ import annotations

import pytest

from cl_nlp.config import load_config
from cl_nlp.experiment import run_experiment
from cl_nlp.tracking import Tracker
from tests.hostile.harness import SMALL


class InterruptAtStage(Tracker):
    """No-op tracker that interrupts the run when stage ``stage``'s metrics arrive (before its checkpoint)."""

    def __init__(self, stage: int):
        self.stage = stage

    def log_metrics(self, values, step):
        if "acc_avg" in values and step == self.stage:
            raise KeyboardInterrupt


@pytest.fixture(scope="session")
def base_run(tiny_model, tmp_path_factory):
    """An ewc run (tensor state to damage) stopped by Ctrl-C in task 2: KILLED, checkpoint after task 1."""
    out = tmp_path_factory.mktemp("base")
    cfg = load_config(None, [*SMALL, "strategy.fisher_samples=8", "tracking.enabled=false"], strategy="ewc",
                      model=tiny_model)
    cfg.output, cfg.run_name = str(out), "base"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tracker=InterruptAtStage(2), echo=lambda line: None)
    assert (out / "base" / "checkpoints" / "stage-001").is_dir()
    return out / "base"
