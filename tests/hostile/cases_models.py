"""Hostile model folders: cut or corrupted weights, shapes that do not fit, a pickle payload."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

from tests.hostile.harness import Case, Env, corrupt_header, run_args, truncate

PICKLE_MARKER = "PICKLE-RAN"


def model_copy(e: Env, name: str) -> Path:
    folder = e.root / name
    shutil.copytree(e.model, folder)
    return folder


def damaged(e: Env, name: str, damage) -> list[str]:
    folder = model_copy(e, name)
    damage(folder)
    return run_args(e, model=str(folder))


def edit_config(**change):
    def damage(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(change)
        (folder / "config.json").write_text(json.dumps(config))
    return damage


class Payload:
    """Unpickling this runs a shell command: a refused pickle must never get that far."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def pickle_weights(e: Env):
    def damage(folder: Path) -> None:
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": Payload(e.root / PICKLE_MARKER)}))
    return damage


def weights_dir(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()


def no_tokenizer(folder: Path) -> None:
    for p in folder.glob("tokenizer*"):
        p.unlink()
    for p in folder.glob("vocab*"):
        p.unlink()


CASES = [
    Case("model weights truncated", lambda e: damaged(e, "m-cut", lambda f: truncate(f / "model.safetensors")),
         "cannot load a model from"),
    Case("model weights header corrupted", lambda e: damaged(e, "m-head", lambda f: corrupt_header(f / "model.safetensors")),
         "cannot load a model from"),
    Case("model weights zero bytes", lambda e: damaged(e, "m-zero", lambda f: (f / "model.safetensors").write_bytes(b"")),
         "cannot load a model from"),
    Case("model weights a folder", lambda e: damaged(e, "m-dir", weights_dir), "model"),
    Case("model config hidden_size changed", lambda e: damaged(e, "m-size", edit_config(hidden_size=32)),
         "cannot load a model from"),
    Case("model weights a pickle payload", lambda e: damaged(e, "m-pickle", pickle_weights(e)), "cannot load a model from"),
    Case("model config binary", lambda e: damaged(e, "m-bin", lambda f: (f / "config.json").write_bytes(bytes(range(256)))),
         "is not a model folder"),
    Case("model config unknown model_type", lambda e: damaged(e, "m-type", edit_config(model_type="no-such-arch")), "model"),
    Case("model without tokenizer files", lambda e: damaged(e, "m-tok", no_tokenizer), "has no tokenizer files"),
    Case("model tokenizer.json binary", lambda e: damaged(e, "m-tokbin", lambda f: (f / "tokenizer.json").write_bytes(
        b"\x00\xff" * 64)), "cannot load a tokenizer"),
    Case("model positions fewer than max_length", lambda e: damaged(e, "m-pos", edit_config(max_position_embeddings=16)),
         "model.max_length=64 is more than the 16 positions"),
]
