"""`--strategy path/to/file.py:ClassName` and `--strategy package.module:ClassName`: a strategy
without packaging, through the real CLI; every way to get it wrong is one `error:` line."""

import json
import textwrap

import pytest
from mlflow.tracking import MlflowClient

from cl_nlp.cli import main
from cl_nlp.strategies import (
    build_strategy,
    get_strategy_spec,
    strategy_label,
    strategy_options,
)
from cl_nlp.strategies.base import NoOptions, StrategyContext
from tests.conftest import FAST_TRAIN, SMALL_STREAM

SOURCE = textwrap.dedent('''
    """A strategy file that is not a package: label smoothing through the loss hook."""
    from dataclasses import dataclass, field

    import torch.nn.functional as F

    from cl_nlp.options import require
    from cl_nlp.strategies import Strategy


    @dataclass
    class SmoothingOptions:
        smoothing: float = field(default=0.1, metadata={"help": "label smoothing"})

        def __post_init__(self):
            require(0 <= self.smoothing < 1, f"smoothing must be in [0, 1), got {self.smoothing}")


    class Smoothed(Strategy):
        """Cross-entropy with label smoothing."""

        Options = SmoothingOptions

        def loss(self, model, batch, output):
            self.steps = getattr(self, "steps", 0) + 1
            return F.cross_entropy(output.logits, batch["labels"], label_smoothing=self.options.smoothing)

        def figures(self):
            return {"smoothed/steps": float(self.steps)}


    class Plain(Strategy):
        """No options declared."""
''')


def sets(*items):
    return [x for item in items for x in ("--set", item)]


def test_file_strategy_runs_from_the_cli_with_options_a_sane_tag_and_folder(tiny_model, tmp_path, monkeypatch,
                                                                             tracking_uri):
    (tmp_path / "my_strategy.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    main(["run", "--strategy", "./my_strategy.py:Smoothed", "--model", tiny_model, "--output", "runs",
          "--tracking-uri", tracking_uri, "--experiment", "file", *sets(*SMALL_STREAM, *FAST_TRAIN, "strategy.smoothing=0.2")])
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("my_strategy-Smoothed-clinc-cil-seed0-")  # no slash, no colon
    results = json.loads((run_dir / "results.json").read_text())
    assert results["stages_done"] == 2
    config = (run_dir / "config.yaml").read_text()
    assert "name: ./my_strategy.py:Smoothed" in config and "smoothing: 0.2" in config
    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("file").experiment_id])
    assert run.data.tags["strategy"] == "my_strategy:Smoothed"
    assert run.data.params["strategy.name"] == "./my_strategy.py:Smoothed"
    assert run.data.metrics["strategy/smoothed/steps"] > 0  # its hooks ran


def test_module_strategy_and_the_options_rule(tmp_path, monkeypatch):
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "smoothing.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = get_strategy_spec("my_pkg.smoothing:Smoothed")
    assert spec.summary == "Cross-entropy with label smoothing."
    assert strategy_options("my_pkg.smoothing:Smoothed", {"smoothing": 0.3}).smoothing == 0.3
    strategy = build_strategy("my_pkg.smoothing:Smoothed", None, StrategyContext())
    assert type(strategy).__name__ == "Smoothed" and strategy.options.smoothing == 0.1
    assert get_strategy_spec("my_pkg.smoothing:Plain").options_cls is NoOptions  # no Options attribute
    assert strategy_label("my_pkg.smoothing:Plain") == "my_pkg.smoothing:Plain"
    assert strategy_label("some/where/file.py:Plain") == "file:Plain" and strategy_label("ewc") == "ewc"


BAD = {
    "missing file": ("./nowhere.py:Smoothed", "no such file './nowhere.py'"),
    "a folder, not a .py file": ("./sub:Smoothed", "no such file './sub' (a strategy file ends in .py)"),
    "import error in the file": ("./broken.py:Smoothed",
                                 "importing './broken.py' failed: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    "syntax error in the file": ("./syntax.py:Smoothed", "importing './syntax.py' failed: SyntaxError:"),
    "missing class": ("./my_strategy.py:Nope",
                      "'./my_strategy.py' has no class 'Nope'; Strategy subclasses there: Plain, Smoothed"),
    "not a Strategy": ("./my_strategy.py:SmoothingOptions",
                       "SmoothingOptions is not a subclass of cl_nlp.strategies.Strategy"),
    "missing module": ("no_such_pkg_xyz.mod:Smoothed", "no module named 'no_such_pkg_xyz'"),
    "not a class name": ("./my_strategy.py:9x", "'9x' after the last ':' is not a class name"),
    "bad option": ("./my_strategy.py:Smoothed", "smoothing must be in [0, 1), got 2.0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_mistake_is_one_error_line(case, tmp_path, monkeypatch, capsys):
    (tmp_path / "my_strategy.py").write_text(SOURCE)
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    name, message = BAD[case]
    extra = sets("strategy.smoothing=2") if case == "bad option" else []
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--strategy", name, "--no-tracking", "--output", "runs", *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    assert message in err[0]
    assert not (tmp_path / "runs").exists()  # refused before anything was written
