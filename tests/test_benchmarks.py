"""The benchmarks' building blocks, and one benchmark end to end in quick mode on the tiny BERT."""

import contextlib
import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import eval_throughput  # noqa: E402
import hardware  # noqa: E402
import harness  # noqa: E402
import strategy_overheads  # noqa: E402
import vs_trainer  # noqa: E402

from cl_nlp.batching import collate  # noqa: E402
from cl_nlp.config import TrainConfig  # noqa: E402


@pytest.fixture(scope="module")
def bench(tiny_model):
    return harness.clinc_bench(1, 3, 8, 2, tiny_model)


def test_alternate_swaps_the_order_every_round_and_keeps_what_contenders_report():
    calls = []
    seconds = iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    def contender(name):
        return lambda: calls.append(name) or next(seconds)

    out = harness.alternate({"a": contender("a"), "b": contender("b")}, 3, log=lambda _: None)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert out == {"a": [1.0, 4.0, 5.0], "b": [2.0, 3.0, 6.0]}
    assert harness.median(out["a"]) == 4.0


def test_token_counts_match_the_examples_and_epochs(bench):
    cfg = TrainConfig(epochs=2, batch_size=5)
    real, padded, steps = hardware.token_counts(bench, cfg, seed=0)
    lengths = [len(x) for x in bench.data[0].train.input_ids]
    assert real == 2 * sum(lengths)
    assert steps == 2 * math.ceil(len(lengths) / 5)
    assert sum(lengths) * 2 <= padded <= 2 * max(lengths) * 5 * math.ceil(len(lengths) / 5)


def test_hf_collator_pads_exactly_like_cl_nlp(bench):
    from transformers import DataCollatorWithPadding

    train = bench.data[0].train
    rows = vs_trainer.hf_dataset(bench)
    hf = DataCollatorWithPadding(bench.tokenizer)([rows[i] for i in range(6)])
    ours = collate(train.subset(range(6)), bench.pad_id)
    assert hf["input_ids"].tolist() == ours["input_ids"].tolist()
    assert hf["attention_mask"].tolist() == ours["attention_mask"].tolist()
    assert hf["labels"].tolist() == ours["labels"].tolist()


def test_probe_share_is_probe_seconds_over_run_seconds():
    results = {"timings": {"probe_seconds/pretrained": 3.0, "probe_seconds/t1": 1.0, "train_seconds/t1": 9.0,
                           "run_seconds": 20.0}}
    assert strategy_overheads.probe_share(results) == pytest.approx(0.2)
    assert math.isnan(strategy_overheads.probe_share({"timings": {}}))


def test_eval_throughput_quick_prints_its_ratios_last(tiny_model, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["eval_throughput.py", "--quick", "--model", tiny_model])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        eval_throughput.main()
    last = out.getvalue().strip().splitlines()[-3:]
    assert last[0].startswith("== evaluation throughput")
    assert last[1].startswith("speed: sorted / split-order examples/s")
    assert float(last[1].split()[-1]) > 0
    assert last[2].split()[:4] == ["same", "predictions", "(share)", "1.000"]
    assert np.isfinite(hardware.matmul_rate(64, 64, 64, seconds=0.01))


def test_ewc_step_benchmark_runs_quick_and_prints_its_ratios_last(tiny_model, monkeypatch, capsys):
    import ewc_step

    monkeypatch.setattr(sys, "argv", ["ewc_step.py", "--quick", "--model", tiny_model])
    ewc_step.main()
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-4].startswith("== EWC on a default-sized task")
    name, value = out[-1].split("  (")[0].rsplit(None, 1)
    assert name.strip() == "EWC / naive, wall per default task"
    assert float(value) > 0  # a ratio, not a verdict: a smoke test of seconds on a shared machine times nothing


def test_beside_another_run_builds_both_conditions_and_reads_the_spin_count(tmp_path):
    import beside_another_run as bench

    passive = bench.command("passive", tmp_path, "a", ["train.epochs=1"], "/m")
    spinning = bench.command("spinning", tmp_path, "b", ["train.epochs=1"], None)
    assert passive[1:3] == ["-m", "cl_nlp.cli"]  # the command line as users start it
    assert spinning[1:3] == ["-c", bench.SPINNING_CODE] and "import sys, torch;" in spinning[2]
    assert passive[3:9] == ["run", "--output", str(tmp_path), "--run-name", "a", "--no-tracking"]
    assert passive[-4:] == ["--model", "/m", "--set", "train.epochs=1"] and "--model" not in spinning
    assert bench.spincount("  OMP_WAIT_POLICY = 'PASSIVE'\n  GOMP_SPINCOUNT = '0'\n") == "0"
    assert bench.spincount("no display") is None
    assert not any(k.startswith(("OMP_WAIT", "GOMP_")) for k in bench.environment("passive"))
    assert bench.environment("spin:20000")["GOMP_SPINCOUNT"] == "20000" == bench.expected_spincount("spin:20000")
