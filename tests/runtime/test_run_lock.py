"""One process per run folder: a second one is refused with one line; a killed holder frees it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cl_nlp.cli import main
from cl_nlp.errors import UserError
from cl_nlp.runtime.run_lock import LOCK_NAME, RunFolderLock

TINY = ["--set", "stream.n_tasks=2", "--set", "stream.classes_per_task=3", "--set", "stream.train_per_class=8",
        "--set", "stream.test_per_class=4", "--set", "train.epochs=1", "--set", "eval.probes=false"]


def test_a_held_folder_is_refused_and_free_again_after_release(tmp_path):
    held = RunFolderLock.acquire(tmp_path)
    with pytest.raises(UserError, match=r"is in use by another cl-nlp process \(pid \d+ on .+, since "):
        RunFolderLock.acquire(tmp_path)
    held.release()
    RunFolderLock.acquire(tmp_path).release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from pathlib import Path; from cl_nlp.runtime.run_lock import RunFolderLock; "
            f"RunFolderLock.acquire(Path({str(tmp_path)!r})); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {holder.pid} "):
            RunFolderLock.acquire(tmp_path)
    finally:
        holder.kill()  # SIGKILL: no clean-up code runs
        holder.wait()
    RunFolderLock.acquire(tmp_path).release()


def test_a_run_into_a_folder_in_use_is_refused_before_it_writes_anything(tiny_model, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "busy"
    run_dir.mkdir(parents=True)
    held = RunFolderLock.acquire(run_dir)  # as a run that is still going holds it
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--run-name", "busy",
                  "--no-tracking", *TINY])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is in use by another cl-nlp process" in err[0], err
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # no config, status or results written
    finally:
        held.release()
    main(["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--run-name", "busy", "--no-tracking", *TINY])
    assert (run_dir / "results.json").exists()
    RunFolderLock.acquire(run_dir).release()  # the finished run let go of its folder
