"""The two strategies written from scratch in docs/strategies.md (LwF through the loss hook, a
gradient projection through adjust_gradients): the exact code of the guide, loaded as
``file.py:ClassName``, checked against hand computations, run from the CLI and resumed."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cl_nlp.batching import collate
from cl_nlp.cli import main
from cl_nlp.config import load_config
from cl_nlp.experiment import run_experiment
from cl_nlp.strategies import ForwardOutput, StrategyContext, build_strategy
from cl_nlp.tracking import Tracker
from tests.conftest import FAST_TRAIN, SMALL_STREAM
from tests.strategies.helpers import perturb_, task_data, tiny_classifier, tiny_examples

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
TASK_CLASSES = torch.tensor([[True, True, False, False], [False, False, True, True]])


def guide_code(marker: str) -> str:
    """The guide's one ```python block containing ``marker``: the test runs what users read."""
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL) if marker in b]
    return block


@pytest.fixture()
def guide_files(tmp_path):
    (tmp_path / "lwf.py").write_text(guide_code("class LwF(Strategy)"))
    (tmp_path / "projection.py").write_text(guide_code("class GradientProjection(Strategy)"))
    return {"lwf": f"{tmp_path / 'lwf.py'}:LwF", "projection": f"{tmp_path / 'projection.py'}:GradientProjection"}


def test_guide_strategies_are_under_sixty_lines():
    for marker in ("class LwF(Strategy)", "class GradientProjection(Strategy)"):
        assert len(guide_code(marker).strip().splitlines()) <= 60, marker


def forward(model, batch):
    out = model(batch["input_ids"], batch["attention_mask"])
    return ForwardOutput(logits=out.logits.float(), all_logits=out.logits.float(), features=out.features)


def test_lwf_loss_is_cross_entropy_plus_the_distillation_term_by_hand(guide_files, tiny_model):
    context = StrategyContext(num_classes=4, task_classes=TASK_CLASSES)
    lwf = build_strategy(guide_files["lwf"], {"alpha": 0.5, "temperature": 2.0}, context)
    model = tiny_classifier(tiny_model).eval()
    first, second = tiny_examples(tiny_model, [0, 1, 0, 1]), tiny_examples(tiny_model, [2, 3, 2, 3], task=1)
    batch = collate(second, pad_id=0)
    output = forward(model, batch)
    assert torch.equal(lwf.loss(model, batch, output), F.cross_entropy(output.logits, batch["labels"]))  # no teacher yet
    lwf.after_task(task_data(0, first), model)
    teacher_logits = model(batch["input_ids"], batch["attention_mask"]).logits.detach().double()
    perturb_(model, scale=0.05)
    output = forward(model, batch)
    loss = lwf.loss(model, batch, output)
    # By hand, float64: KL(p_teacher || p_student) over task 0's classes {0, 1}, at T = 2, times α·T².
    p_t = torch.softmax(teacher_logits[:, :2] / 2, dim=-1)
    log_p_s = torch.log_softmax(output.all_logits.detach().double()[:, :2] / 2, dim=-1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    expected = F.cross_entropy(output.logits.double(), batch["labels"]) + 0.5 * 4 * kl
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and kl.item() > 1e-6
    # Resume: the teacher comes back from the model handed to load_state_dict.
    restored = build_strategy(guide_files["lwf"], {"alpha": 0.5, "temperature": 2.0}, context)
    restored.load_state_dict(lwf.state_dict(), lwf.teacher)
    assert torch.equal(restored.loss(model, batch, output), loss)


def test_projection_removes_exactly_the_opposing_component(guide_files, tiny_model):
    context = StrategyContext(num_classes=4, task_classes=TASK_CLASSES)
    proj = build_strategy(guide_files["projection"], {"samples": 100}, context)
    model = tiny_classifier(tiny_model)
    train = tiny_examples(tiny_model, [0, 1, 0, 1, 1, 0])
    proj.after_task(task_data(0, train), model)
    # The reference, independently: the gradient of task 0's mean loss over all 6 examples (eval mode).
    model.eval()
    batch = collate(train, pad_id=0)
    F.cross_entropy(model(batch["input_ids"], batch["attention_mask"]).logits, batch["labels"]).backward()
    reference = {n: p.grad.double().clone() for n, p in model.named_parameters()}
    for n, r in reference.items():
        assert torch.allclose(proj.reference[n].double(), r, rtol=1e-4, atol=1e-8), n
    r = torch.cat([v.view(-1) for v in reference.values()])
    for sign in (-1.0, 1.0):  # a gradient against the reference, then one along it
        g = torch.randn(len(r), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        g = g - (g @ r) / (r @ r) * r + sign * 0.3 * r * g.norm() / r.norm()
        offset = 0
        for p in model.parameters():
            p.grad = g[offset:offset + p.numel()].view_as(p).float().clone()
            offset += p.numel()
        proj.adjust_gradients(model, {})
        after = torch.cat([p.grad.view(-1).double() for p in model.parameters()])
        expected = g - min(float(g @ r), 0.0) / float(r @ r) * r
        assert torch.allclose(after, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))
        if sign < 0:
            assert abs(float(after @ r)) < 1e-3 * float(g.norm() * r.norm())  # no longer against it


class InterruptAtStage(Tracker):
    """No-op tracker that interrupts the run when stage ``stage``'s metrics arrive (before its checkpoint)."""

    def __init__(self, stage: int):
        self.stage = stage

    def log_metrics(self, values, step):
        if "acc_avg" in values and step == self.stage:
            raise KeyboardInterrupt


def results_without_times(run_dir: Path) -> dict:
    def strip(x):
        return {k: strip(v) for k, v in x.items() if k != "timings" and "seconds" not in k} if isinstance(x, dict) else x
    return strip(json.loads((run_dir / "results.json").read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["lwf", "projection"])
def test_guide_strategy_runs_from_the_cli_and_resumes_bit_exactly(which, guide_files, tiny_model, tmp_path):
    sets = [x for o in [*SMALL_STREAM, *FAST_TRAIN] for x in ("--set", o)]
    main(["run", "--strategy", guide_files[which], "--model", tiny_model, "--output", str(tmp_path / "cli"),
          "--run-name", which, "--no-tracking", *sets])
    assert json.loads((tmp_path / "cli" / which / "results.json").read_text())["stages_done"] == 2

    def config(run_name):
        cfg = load_config(None, [*SMALL_STREAM, "train.epochs=1", "train.batch_size=8", "train.lr=0.003",
                                 "tracking.enabled=false", "save.keep_checkpoint=true"], strategy=guide_files[which], model=tiny_model)
        cfg.output, cfg.run_name = str(tmp_path), run_name
        return cfg

    def quiet(line):
        return None
    run_experiment(config("whole"), echo=quiet)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config("cut"), tracker=InterruptAtStage(2), echo=quiet)
    run_experiment(config("cut"), echo=quiet, resume=True)  # task 2 again, from the stage-1 checkpoint
    assert results_without_times(tmp_path / "cut") == results_without_times(tmp_path / "whole")
    from safetensors.torch import load_file

    whole, cut = [load_file(next((tmp_path / r / "checkpoints").iterdir()) / "model.safetensors") for r in ("whole", "cut")]
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert np.isfinite(results_without_times(tmp_path / "whole")["matrices"]["live"][1][0])
