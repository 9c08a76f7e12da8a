"""Bad input is refused before anything is loaded: one `error:` line, exit status 2, no traceback.

Each row is a `cl-nlp run` command line and a fragment its one line must contain. Most rows go
through :func:`cl_nlp.cli.main` in-process (fast); a few through a real subprocess.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cl_nlp.cli import main
from cl_nlp.strategies import strategy_names


def closed_port() -> int:
    with socket.socket() as s:  # bound then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_inputs(root: Path) -> None:
    """Files the rows refer to: broken YAML, a non-mapping YAML, folders that are not models or runs."""
    (root / "broken.yaml").write_text("train:\n  epochs: [1\n")
    (root / "list.yaml").write_text("- seed\n- stream\n")
    (root / "empty-dir").mkdir()
    (root / "garbage-model").mkdir()
    (root / "garbage-model" / "config.json").write_text('{"model_type": "bert"')  # cut short
    (root / "no-ckpt-run").mkdir()
    (root / "no-ckpt-run" / "config.yaml").write_text("seed: 0\n")
    run = root / "done-run"  # a run folder with a (minimal) checkpoint, to resume
    (run / "checkpoints" / "stage-001").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\nstrategy: naive\nstream:\n  name: clinc-cil\n  n_tasks: 2\n")
    (run / "checkpoints" / "stage-001" / "state.json").write_text(json.dumps({"format": 1, "stage": 1}))


# (id, arguments after `cl-nlp run` — {root} is a folder with make_inputs' files, {port} closed —, fragment)
ROWS = [
    ("unknown strategy", ["--strategy", "nope"], "unknown strategy 'nope'; choose one of:"),
    ("unknown stream", ["--stream", "nope"], "unknown stream 'nope'; choose one of:"),
    ("unknown train option", ["--set", "train.learning_rate=1"], "train: unknown option 'learning_rate'; valid options are:"),
    ("unknown section", ["--set", "trian.epochs=1"], "unknown config section 'trian'"),
    ("unknown strategy option", ["--set", "strategy.alpha=1"], "strategy (naive): unknown option 'alpha'"),
    ("unknown stream option", ["--set", "stream.tasks=2"], "stream (clinc-cil): unknown option 'tasks'"),
    ("unknown flag", ["--epochs", "2"], "No such option '--epochs'"),
    ("malformed YAML", ["--config", "{root}/broken.yaml"], "is not valid YAML (line 3, column 1)"),
    ("YAML not a mapping", ["--config", "{root}/list.yaml"], "must hold a mapping of sections"),
    ("missing config file", ["--config", "{root}/missing.yaml"], "does not exist; pass an existing YAML file"),
    ("--set without =", ["--set", "train.epochs"], "expected key=value"),
    ("wrong type int", ["--set", "train.epochs=two"], "train.epochs: expected int, got 'two'"),
    ("wrong type float", ["--set", "train.lr=fast"], "train.lr: expected float, got 'fast'"),
    ("wrong type flag", ["--seed", "abc"], "Invalid value for '--seed': 'abc' is not a valid integer"),
    ("negative lr", ["--set", "train.lr=-0.001"], "lr must be > 0, got -0.001"),
    ("zero epochs", ["--set", "train.epochs=0"], "epochs must be >= 1, got 0"),
    ("zero batch size", ["--set", "train.batch_size=0"], "batch_size must be >= 1, got 0"),
    ("warmup out of range", ["--set", "train.warmup_ratio=1.5"], "warmup_ratio must be in [0, 1), got 1.5"),
    ("bad choice", ["--set", "train.device=tpu"], "train.device: expected 'auto' | 'cpu' | 'cuda', got 'tpu'"),
    ("max_length too small", ["--set", "model.max_length=4"], "max_length must be >= 8, got 4"),
    ("stream too large", ["--set", "stream.n_tasks=100"], "n_tasks x classes_per_task must be <= 150"),
    ("ewc lambda < 0", ["--strategy", "ewc", "--set", "strategy.lambda=-1"], "lambda must be >= 0, got -1"),
    ("replay buffer < 0", ["--strategy", "replay", "--set", "strategy.size=-1"], "size must be >= 1, got -1"),
    ("model path missing", ["--model", "{root}/no-such-model"], "does not exist; pass a model folder"),
    ("model path not a model", ["--model", "{root}/empty-dir"], "is not a model folder (no config.json)"),
    ("model config broken", ["--model", "{root}/garbage-model"], "its config.json is not a model config"),
    ("tracking unreachable", ["--tracking-uri", "http://127.0.0.1:{port}"], "is not reachable ([Errno 111] Connection refused)"),
    ("tracking scheme unknown", ["--tracking-uri", "foo://bar"], "cannot use MLflow tracking URI 'foo://bar'"),
    ("resume missing folder", ["--resume", "{root}/no-such-run"], "no such folder; pass the run folder"),
    ("resume not a run", ["--resume", "{root}/empty-dir"], "is not a cl-nlp run folder (no config.yaml)"),
    ("resume no checkpoint", ["--resume", "{root}/no-ckpt-run"], "the run has no checkpoint"),
    ("resume with --strategy", ["--resume", "{root}/done-run", "--strategy", "ewc"], "drop --strategy"),
    ("resume changing seed", ["--resume", "{root}/done-run", "--set", "seed=3"], "--set seed=3 would change it (it was 0)"),
    ("resume changing stream", ["--resume", "{root}/done-run", "--set", "stream.n_tasks=3"], "--set stream.n_tasks=3 would change it"),
]


def expand(args: list[str], root: Path, port: int) -> list[str]:
    return [a.format(root=root, port=port) for a in args]


def assert_one_clear_line(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def needs(args: list[str]) -> list:
    """Rows about a strategy's own options run once that strategy is registered."""
    name = args[args.index("--strategy") + 1] if "--strategy" in args else None
    missing = name is not None and name != "nope" and name not in strategy_names()
    return [pytest.mark.skipif(missing, reason=f"strategy {name} not registered")]


@pytest.mark.parametrize("args, fragment", [pytest.param(a, f, id=n, marks=needs(a)) for n, a, f in ROWS])
def test_bad_input_in_process(args, fragment, tmp_path, capsys):
    make_inputs(tmp_path)
    output = tmp_path / "runs"
    where = [] if "--resume" in args else ["--output", str(output)]  # --resume takes the run's own folder
    with pytest.raises(SystemExit) as exit_info:
        main(["run", *where, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *expand(args, tmp_path, closed_port())])
    assert exit_info.value.code == 2
    assert_one_clear_line(capsys.readouterr().err, fragment)
    assert not output.exists()  # refused before a run folder (let alone a model) was made


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="unknown strategy"):
        main(["--debug", "run", "--strategy", "nope", "--output", str(tmp_path)])


@pytest.mark.slow
@pytest.mark.parametrize("args, fragment", [
    (["--resume", "{root}/no-ckpt-run"], "the run has no checkpoint"),
], ids=["bad --resume"])
def test_bad_input_in_a_real_process(args, fragment, tmp_path):
    make_inputs(tmp_path)
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "run", "--no-tracking", *expand(args, tmp_path, closed_port())],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert_one_clear_line(out.stderr, fragment)


def test_model_with_custom_code_is_refused_without_running_it(tiny_model, tmp_path, capsys):
    """trust_remote_code stays off unless model.trust_remote_code=true: the folder's code never runs."""
    folder = tmp_path / "custom-model"
    folder.mkdir()
    for f in Path(tiny_model).glob("tokenizer*"):
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "config.json").write_text(json.dumps({"model_type": "custom-bert", "auto_map": {
        "AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"}}))
    payload = "import pathlib\npathlib.Path(__file__).with_name('EXECUTED').write_text('ran')\n"
    (folder / "configuration_custom.py").write_text(payload)
    (folder / "modeling_custom.py").write_text(payload)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", str(folder), "--no-tracking", "--output", str(tmp_path / "runs"),
              "--set", "stream.n_tasks=2", "--set", "stream.classes_per_task=3", "--set", "stream.train_per_class=4"])
    assert exit_info.value.code == 2
    assert_one_clear_line(capsys.readouterr().err, "contains custom code")
    assert not (folder / "EXECUTED").exists()
