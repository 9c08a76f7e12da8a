"""LwF, A-GEM, DER, DER++, ER-ACE and MAS under data parallelism: 2 CPU processes (gloo) act alike,
and train the model one process trains with the same effective batch."""

import json

import pytest
import torch
from safetensors.torch import load_file

from cl_nlp.models import build_model
from tests.runtime.test_distributed import ROOT, launch, no_dropout_bert
from tests.strategies.baselines_worker import STRATEGIES, train


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_effective_batch(tmp_path):
    """Dropout off, so both runs take the same steps and differ only in float reduction order
    (measured: weights agree to 5e-7 - 6e-6 after moving ~6e-3; the bound is 1e-4). Every
    row-weighted loss, the averaged A-GEM reference gradient, DER's gathered logits and the split
    MAS importance are on this path."""
    model = no_dropout_bert(tmp_path / "tiny")
    done = launch(tmp_path, [str(ROOT / "tests" / "strategies" / "baselines_worker.py"), str(tmp_path), model])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    reports = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["processes"] for r in reports] == [2, 2]
    torch.manual_seed(0)
    initial = build_model(model, 6).state_dict()
    for name, options in STRATEGIES.items():
        assert reports[0][name] == reports[1][name], name  # same weights, strategy state, accuracies
        assert reports[0][name]["steps"] == 3 * 2 * 2  # 21 examples per task in batches of 2 x 5, 2 epochs
        parallel = load_file(tmp_path / f"{name}.safetensors")
        single = train(name, options, model, batch_size=10).model.state_dict()
        gap = max(float((parallel[k] - single[k]).abs().max()) for k in parallel)
        assert gap < 1e-4, (name, gap)
        moved = max(float((parallel[k] - initial[k]).abs().max()) for k in parallel)
        assert moved > 30 * max(gap, 1e-4), (name, moved, gap)  # the runs trained: agreeing is not trivial
