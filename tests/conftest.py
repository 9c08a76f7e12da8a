"""Shared fixtures: a tiny random BERT saved like a real model folder, and small-stream options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests start CLI subprocesses and MLflow servers beside the pytest process: OpenMP threads that
# spin while waiting made each training step ~10x slower under that sharing (benchmarks/README.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Options that shrink the default stream to seconds on a tiny model.
SMALL_STREAM = ["stream.n_tasks=2", "stream.classes_per_task=3", "stream.train_per_class=8", "stream.test_per_class=4"]
FAST_TRAIN = ["train.epochs=1", "train.batch_size=8"]


def make_tiny_bert(folder: Path) -> Path:
    """A 2-layer, 64-wide random BERT with the embedded MiniLM's tokenizer, saved with save_pretrained."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from cl_nlp.models import embedded_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture()
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
