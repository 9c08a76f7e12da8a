"""A few cases of the table in a real ``cl-nlp`` process: what a shell sees on stderr, with
Python's own warning and traceback printing, and nothing of pytest's capture in between."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.hostile.harness import MESSAGE_LIMIT, Env, changes, snapshot
from tests.hostile.table import CASES

IN_A_PROCESS = ["yaml 20000-deep lists", "seed -1", "--run-name ../../x", "train csv latin-1",
                "model weights a pickle payload", "ckpt model bytes flipped"]


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.id in IN_A_PROCESS], ids=lambda c: c.id)
def test_a_real_process_prints_one_line(case, tmp_path, tiny_model, base_run):
    (tmp_path / "case").mkdir()
    env = Env(tmp_path / "case", tiny_model, base_run)
    args = case.prepare(env)
    before = snapshot(env.root)
    out = subprocess.run([sys.executable, "-m", "cl_nlp.cli", *args], capture_output=True, text=True, cwd=env.root,
                         timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == case.status, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) <= MESSAGE_LIMIT, lines
    assert case.fragment.lower() in lines[0].lower()
    assert not changes(before, snapshot(env.root))
