"""Every shipped config loads and validates: configs/*.yaml as experiments (their stream and
strategy options checked), configs/streams/*.yaml as stream files (built and checked)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cl_nlp.config import load_config
from cl_nlp.strategies import strategy_options
from cl_nlp.streams import build_stream, stream_options

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "configs").glob("*.yaml"))
STREAMS = sorted((ROOT / "configs" / "streams").glob("*.yaml"))


def test_there_are_configs_to_check():
    assert EXPERIMENTS and STREAMS


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_config_loads_and_its_options_validate(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # stream paths in the configs are relative to the repository root
    cfg = load_config(str(path.relative_to(ROOT)))
    stream_options(cfg.stream.name, cfg.stream.options)
    strategy_options(cfg.strategy.name, cfg.strategy.options)
    assert cfg.train.epochs >= 1 and cfg.train.batch_size >= 1


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.name)
def test_stream_file_builds_into_a_checked_stream(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    stream = build_stream("custom", {"path": os.path.relpath(path, ROOT)})
    assert len(stream) >= 1 and all(len(task.train) and len(task.test) for task in stream.tasks)
