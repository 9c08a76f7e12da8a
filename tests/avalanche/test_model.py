"""The cl-nlp classifier as an Avalanche module: same logits as unpadded single-example passes."""

import numpy as np
import pytest
import torch

pytest.importorskip("avalanche", reason="the avalanche extra is not installed (see .ci/avalanche)")

from avalanche.models.utils import avalanche_forward  # noqa: E402

from cl_nlp.avalanche.benchmark import text_rows  # noqa: E402
from cl_nlp.avalanche.model import MASKED_LOGIT, TextClassifierModule, task_incremental_module  # noqa: E402
from cl_nlp.batching import Examples  # noqa: E402
from cl_nlp.models import build_model  # noqa: E402

IDS = [[101, 2023, 2003, 102], [101, 7592, 102], [101, 2307, 2154, 2000, 2017, 102]]


@pytest.fixture(scope="module")
def classifier(tiny_model):
    torch.manual_seed(0)
    return build_model(tiny_model, num_classes=6).eval()


def test_logits_match_each_example_run_alone_without_padding(classifier):
    x = text_rows(Examples(IDS, np.zeros(3, np.int64), np.zeros(3, np.int64)), pad_id=0, width=16)
    with torch.no_grad():
        batched = TextClassifierModule(classifier)(x)
        alone = [classifier(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)).logits[0] for ids in IDS]
    torch.testing.assert_close(batched, torch.stack(alone), atol=1e-5, rtol=1e-4)


def test_task_incremental_module_masks_other_tasks_classes(classifier):
    task_classes = torch.tensor([[True, True, True, False, False, False], [False, False, False, True, True, True]])
    module = task_incremental_module(classifier, task_classes)
    x = text_rows(Examples(IDS, np.zeros(3, np.int64), np.zeros(3, np.int64)), pad_id=0, width=8)
    with torch.no_grad():
        plain = TextClassifierModule(classifier)(x)
        masked = avalanche_forward(module, x, torch.tensor([0, 1, 1]))  # Avalanche passes task labels
    assert masked[0, :3].tolist() == plain[0, :3].tolist() and masked[1:, 3:].tolist() == plain[1:, 3:].tolist()
    assert (masked[0, 3:] == MASKED_LOGIT).all() and (masked[1:, :3] == MASKED_LOGIT).all()
    # Distillation on masked logits stays finite (a -inf mask would give NaN in LwF/DER).
    soft = torch.log_softmax(masked / 2.0, -1) * torch.softmax(masked / 2.0, -1)
    assert torch.isfinite(soft.sum())
