"""A finished run's folder: small by default, the checkpoint on request, the final model as a
Hugging Face folder that loads back into the same classifier."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from cl_nlp.cli import main
from cl_nlp.run_outputs import folder_size
from cl_nlp.saved_model import load_saved_model
from tests.conftest import FAST_TRAIN, SMALL_STREAM


def run(tiny_model, tmp_path, name, *flags):
    main(["run", "--model", tiny_model, "--output", str(tmp_path), "--run-name", name, "--no-tracking", *flags,
          *[x for item in SMALL_STREAM + FAST_TRAIN for x in ("--set", item)]])
    return tmp_path / name


def test_a_finished_run_drops_its_checkpoint_unless_asked_and_cannot_be_resumed(tiny_model, tmp_path, capsys):
    run_dir = run(tiny_model, tmp_path, "small")
    assert not (run_dir / "checkpoints").exists()
    assert json.loads((run_dir / "status.json").read_text())["checkpoint"] is None
    # The tiny model's weights alone are ~8 MB (30,522 x 64 embeddings in fp32): none of that is left.
    assert folder_size(run_dir) < 1_000_000
    assert "resume checkpoint removed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--resume", str(run_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the run finished and its checkpoint was removed" in err[0]


def test_keep_checkpoint_and_save_model(tiny_model, tmp_path):
    run_dir = run(tiny_model, tmp_path, "kept", "--keep-checkpoint", "--save-model")
    (stage,) = (run_dir / "checkpoints").iterdir()
    assert stage.name == "stage-002"
    checkpoint = load_file(stage / "model.safetensors")  # the final weights, as the checkpoint holds them

    folder = run_dir / "model"
    info = json.loads((folder / "head.json").read_text())
    assert info["class_names"] == json.loads((run_dir / "results.json").read_text())["extra"]["class_names"]
    assert info["num_classes"] == 6 and sorted(info["task_classes"]) == ["clinc1", "clinc2"]
    assert sorted(sum(info["task_classes"].values(), [])) == list(range(6))

    encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False)  # plain Hugging Face: no cl-nlp needed
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, checkpoint[f"encoder.{name}"]), name
    model, _ = load_saved_model(folder)
    state = model.state_dict()
    assert state.keys() == checkpoint.keys()
    assert all(torch.equal(state[k], checkpoint[k]) for k in state)
