"""A strategy from another distribution, found through the ``cl_nlp.strategies`` entry point."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import FAST_TRAIN, SMALL_STREAM

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def guide_example() -> str:
    """The complete strategy shown in the guide: the test runs exactly what users read."""
    return re.search(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S).group(1)


def install_plugin(folder):
    """What `pip install` of a distribution declaring the entry point leaves on sys.path."""
    (folder / "my_l2_plugin.py").write_text(guide_example())
    dist = folder / "my_l2_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-l2-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [cl_nlp.strategies]
        l2-anchor = my_l2_plugin
    """))


def test_entry_point_strategy_is_listed_and_runs_from_the_cli(tmp_path, tiny_model):
    install_plugin(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    listed = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "strategies"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "l2-anchor" in listed.stdout and "weight (float, default 0.01)" in listed.stdout

    sets = [x for o in [*SMALL_STREAM, *FAST_TRAIN, "strategy.weight=0.5"] for x in ("--set", o)]
    run = subprocess.run([sys.executable, "-m", "cl_nlp.cli", "run", "--strategy", "l2-anchor", "--model", tiny_model,
                          "--output", str(tmp_path / "runs"), "--run-name", "plugin", "--no-tracking", *sets],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((tmp_path / "runs" / "plugin" / "results.json").read_text())
    assert results["stages_done"] == 2
    config = (tmp_path / "runs" / "plugin" / "config.yaml").read_text()
    assert "name: l2-anchor" in config and "weight: 0.5" in config
