"""Data parallelism: the sharding arithmetic, and real 2-process CPU runs (gloo) against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, load_model

from cl_nlp.batching import Examples
from cl_nlp.checkpoint import join_tensors, latest_checkpoint
from cl_nlp.config import load_config
from cl_nlp.distributed import diverged, process_layout, shard, share, sum_across_processes
from cl_nlp.evaluation.results import Results
from cl_nlp.experiment import run_experiment, tokenize_stream, validate
from cl_nlp.heads import task_class_matrix
from cl_nlp.models import build_model, load_tokenizer
from cl_nlp.strategies.ewc import EWC, EWCOptions
from cl_nlp.strategies.base import StrategyContext
from tests.conftest import make_tiny_bert

ROOT = Path(__file__).resolve().parents[1]


def examples(n: int) -> Examples:
    return Examples([[101, 7 + i, 102] for i in range(n)], np.arange(n, dtype=np.int64), np.zeros(n, np.int64))


@pytest.mark.parametrize("n,count", [(10, 2), (11, 2), (1, 2), (7, 3), (0, 2)])
def test_shares_cover_every_index_once_and_differ_by_at_most_one(n, count):
    parts = [share(n, i, count) for i in range(count)]
    assert [i for p in parts for i in p] == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)  # the main process never has less


@pytest.mark.parametrize("n,count", [(8, 2), (11, 2), (1, 2), (7, 3), (5, 4)])
def test_shard_weights_make_the_average_over_processes_the_whole_batch_mean(n, count):
    # DDP averages the processes' gradients; with the weights, that average must be the gradient
    # of the whole batch's mean loss. Per-example losses stand in for per-example gradients.
    batch = examples(n)
    losses = np.random.default_rng(n).normal(size=n) ** 2
    averaged, seen = 0.0, []
    for index in range(count):
        part, weight = shard(batch, index, count)
        assert len(part) >= 1  # every process joins the all-reduce
        if weight:
            seen += part.labels.tolist()
        averaged += weight * losses[part.labels].mean() / count
    assert sorted(seen) == list(range(n))  # each example in exactly one weighted slice
    assert averaged == pytest.approx(losses.mean(), rel=1e-12)


def test_one_process_leaves_everything_as_it_is():
    assert process_layout() == (0, 1)
    batch = examples(5)
    part, weight = shard(batch, 0, 1)
    assert part is batch and weight == 1.0
    tensors = {"a": torch.ones(3)}
    assert sum_across_processes(tensors) is tensors
    assert diverged(torch.nn.Linear(2, 2), EWC()) == []


# ---- real launches ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path: Path, target: list[str], processes: int = 2) -> subprocess.CompletedProcess:
    """``accelerate launch`` on CPU: torchrun-started workers; no GPU visible, so gloo."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf-home"),  # no accelerate config file of the machine's user applies
           "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), *target]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def no_dropout_bert(folder: Path) -> str:
    """The tiny BERT with every dropout off (the head follows the encoder's hidden dropout)."""
    make_tiny_bert(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def ewc_state(run_dir: Path) -> dict[str, torch.Tensor]:
    """The EWC anchor weights (Fisher) of a run's last checkpoint, dense per parameter."""
    ckpt = latest_checkpoint(run_dir)
    state = join_tensors(json.loads((ckpt.path / "strategy.json").read_text()), load_file(ckpt.path / "strategy.safetensors"))
    ewc = EWC(EWCOptions())
    ewc.load_state_dict(state, model=None)  # EWC rebuilds nothing from the model
    weights = load_file(ckpt.path / "model.safetensors")
    return {n: a.dense(weights[n])[0] for n, a in ewc.anchor.params.items()}


@pytest.mark.slow
def test_two_process_run_equals_one_process_with_the_same_effective_batch(tmp_path):
    """`accelerate launch` of `cl-nlp run` on 2 CPU processes (batch 4 each) against one process (batch 8).

    Dropout is off, so both runs take the same optimisation steps and differ only in float
    reduction order (two partial sums all-reduced against one sum; 1 thread per process against 2):
    weights agree to ~1e-5, and accuracies are required equal up to one test prediction per task
    flipping on a near tie (1/12 here; in practice they are equal). With dropout on they would
    differ by more: the two processes draw their masks from their own streams.
    """
    model = no_dropout_bert(tmp_path / "tiny")
    # 7 per class: 21 examples per task, cut into batches of 8, 8 and 5 (split 3 + 2: the weighted path).
    common = ["--strategy", "ewc", "--model", model, "--output", str(tmp_path / "runs"),
              "--set", "stream.n_tasks=2", "--set", "stream.classes_per_task=3", "--set", "stream.train_per_class=7",
              "--set", "stream.test_per_class=4", "--set", "train.epochs=2", "--set", "train.lr=2e-3",
              "--set", "eval.probes=false", "--set", "strategy.fisher_samples=15",
              # online EWC with gamma 0 keeps only the last task's Fisher: what the checkpoint holds is F_2
              "--set", "strategy.mode=online", "--set", "strategy.gamma=0"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = launch(tmp_path, ["-m", "cl_nlp.cli", "run", *common, "--set", "train.batch_size=4", "--run-name", "dp",
                             "--tracking-uri", uri])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert done.stdout.count("run dp: ewc on clinc-cil") == 1  # only the main process prints

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert json.loads((tmp_path / "runs" / "dp" / "status.json").read_text())["status"] == "FINISHED"

    cfg = load_config(None, [a for a in common[6:] if a != "--set"] + ["train.batch_size=8", "tracking.enabled=false"],
                      strategy="ewc", model=model)
    cfg.output, cfg.run_name = str(tmp_path / "runs"), "single"
    run_experiment(cfg, echo=lambda _: None, show_progress=False)

    dp_dir, single_dir = tmp_path / "runs" / "dp", tmp_path / "runs" / "single"
    # Same steps: the weights after both tasks agree (float noise only).
    dp_weights = load_file(latest_checkpoint(dp_dir).path / "model.safetensors")
    single_weights = load_file(latest_checkpoint(single_dir).path / "model.safetensors")
    assert max(float((dp_weights[k] - single_weights[k]).abs().max()) for k in dp_weights) < 1e-3
    one_prediction = 1 / 12
    dp_results, single_results = Results.load(dp_dir / "results.json"), Results.load(single_dir / "results.json")
    for name in ("live", "task_aware"):
        np.testing.assert_allclose(dp_results.matrix(name), single_results.matrix(name), atol=one_prediction + 1e-9)

    # The Fisher: the 2-process run's (its checkpoint) against a single process's on the very same
    # weights and examples, computed here by EWC in this one process.
    fisher = ewc_state(dp_dir)
    stream = validate(cfg)
    data = tokenize_stream(stream, load_tokenizer(model), cfg.model.max_length)
    net = build_model(model, stream.num_classes)
    load_model(net, latest_checkpoint(dp_dir).path / "model.safetensors")
    single = EWC(EWCOptions(fisher_samples=15, mode="online", gamma=0.0), StrategyContext(
        stream.scenario, len(stream), stream.num_classes, cfg.seed, pad_id=load_tokenizer(model).pad_token_id,
        task_classes=task_class_matrix(stream)))
    single.after_task(data[1], net)
    params = dict(net.named_parameters())
    reference = {n: a.dense(params[n].detach())[0] for n, a in single.anchor.params.items()}
    assert set(fisher) == set(reference)
    scale = max(float(f.abs().max()) for f in reference.values())
    for n in reference:
        torch.testing.assert_close(fisher[n], reference[n], rtol=1e-4, atol=1e-6 * scale, msg=n)
    # ... and against the single-process run's own Fisher (its weights differ by the float noise above).
    own = ewc_state(single_dir)
    assert max(float((own[n] - fisher[n]).abs().max()) for n in own) < 1e-3 * scale


@pytest.mark.slow
def test_strategies_act_alike_on_every_process(tmp_path, tiny_model):
    """Replay, LoRA-merge and joint on 2 processes (dropout on): every process ends with the same
    weights, strategy state and accuracies; split evaluation equals one process's; the Fisher
    summed across processes equals a one-process brute force."""
    done = launch(tmp_path, [str(ROOT / "tests" / "distributed_worker.py"), str(tmp_path), tiny_model])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    reports = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["processes"] for r in reports] == [2, 2]
    for name in ("replay", "lora-merge", "joint"):
        first, second = reports[0][name], reports[1][name]
        assert first == second, name
        # 21 examples per task in batches of 2 x 5: 3 steps per epoch (joint: 5 at stage 2), 2 epochs
        assert first["steps"] == ((3 + 5) * 2 if name == "joint" else 3 * 2 * 2)
    assert all(r["predict_equal"] for r in reports)
    assert [r["diverged"] for r in reports] == [["model.weight"]] * 2
    for r in reports:
        assert r["fisher_max_error"] <= 1e-4 * r["fisher_max"]
