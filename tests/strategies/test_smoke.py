"""Every registered strategy runs a 2-task tiny stream through the real CLI."""

import json

import pytest

from cl_nlp.cli import main
from cl_nlp.strategies import get_strategy_spec, strategy_names
from tests.conftest import FAST_TRAIN, SMALL_STREAM

# Small enough for the tiny stream (8 examples per class); everything else at its default.
TINY_OPTIONS = {"ewc": ["strategy.fisher_samples=8"], "replay": ["strategy.size=10", "strategy.per_batch=4"],
                "agem": ["strategy.size=10", "strategy.memory_batch=4"], "der": ["strategy.size=10", "strategy.per_batch=4"],
                "derpp": ["strategy.size=10", "strategy.per_batch=4"], "er-ace": ["strategy.size=10", "strategy.per_batch=4"],
                "mas": ["strategy.samples=8"]}


# The package's own strategies: other test modules register helpers (e.g. test-nan, which fails on
# purpose) in the same process, and whether they are collected first depends on the test order.
BUILT_IN = [n for n in strategy_names() if get_strategy_spec(n).strategy_cls.__module__.startswith("cl_nlp.")]


@pytest.mark.parametrize("name", BUILT_IN)
def test_strategy_runs_two_tasks_from_the_cli(name, tiny_model, tmp_path):
    overrides = [*SMALL_STREAM, *FAST_TRAIN, *TINY_OPTIONS.get(name, [])]
    main(["run", "--strategy", name, "--model", tiny_model, "--output", str(tmp_path), "--run-name", name,
          "--no-tracking", *[x for o in overrides for x in ("--set", o)]])
    results = json.loads((tmp_path / name / "results.json").read_text())
    assert results["stages_done"] == 2
    live = results["matrices"]["live"]
    assert all(0.0 <= live[i][j] <= 1.0 for i in range(2) for j in range(i + 1))
