"""One process per run folder: a second one is refused with one line, having changed nothing
(not even a half-written checkpoint); a killed holder frees it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cl_nlp.cli import main
from cl_nlp.config import load_config
from cl_nlp.errors import UserError
from cl_nlp.experiment import run_experiment
from cl_nlp.runtime import checkpoint
from cl_nlp.runtime.checkpoint import latest_checkpoint
from cl_nlp.runtime.checkpoint_integrity import verify_checkpoint
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


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_resume_arriving_mid_checkpoint_is_refused_and_the_run_keeps_every_checkpoint(tiny_model, tmp_path,
                                                                                        monkeypatch, capsys):
    """The race of issue 19: freeze a running run inside its stage-2 checkpoint write, start
    `--resume` and a relaunch of the same --run-name; both are refused without touching the
    half-written checkpoint, and the run, released, finishes with every checkpoint whole."""
    inside, release = threading.Event(), threading.Event()
    real_save_file = checkpoint.save_file

    def frozen_mid_write(tensors, filename, *args, **kwargs):
        real_save_file(tensors, filename, *args, **kwargs)
        if ".stage-002.tmp-" in str(filename) and str(filename).endswith("strategy.safetensors"):
            inside.set()  # model and strategy tensors written, the rest (and the rename) still to come
            assert release.wait(120)

    monkeypatch.setattr(checkpoint, "save_file", frozen_mid_write)
    cfg = load_config(None, [*TINY[1::2], "stream.n_tasks=3", "tracking.enabled=false"], model=tiny_model)
    cfg.output, cfg.run_name = str(tmp_path / "runs"), "racing"
    run_dir = tmp_path / "runs" / "racing"
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = run_experiment(cfg, echo=lambda line: None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert inside.wait(300), f"the run never reached its stage-2 checkpoint: {outcome}"
        (partial,) = (run_dir / "checkpoints").glob(".stage-002.tmp-*")
        before = snapshot(run_dir / "checkpoints")
        for args, refusal in ((["run", "--resume", str(run_dir), "--no-tracking"], "is in use by another cl-nlp process"),
                              (["run", "--model", tiny_model, "--output", str(tmp_path / "runs"), "--run-name", "racing",
                                "--no-tracking", *TINY, "--set", "stream.n_tasks=3"], "already holds a run")):
            with pytest.raises(SystemExit) as exit_info:
                main(args)
            assert exit_info.value.code == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and refusal in err[0], err
            assert snapshot(run_dir / "checkpoints") == before  # the half-written checkpoint untouched
            assert partial.is_dir()
    finally:
        release.set()
        runner.join(300)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].results.stages_done == 3
    (final,) = sorted((run_dir / "checkpoints").iterdir())  # no temporary folder left, only the newest kept
    assert final.name == "stage-003"
    ckpt = latest_checkpoint(run_dir)
    verify_checkpoint(ckpt, "")  # every file matches the manifest written last
    assert json.loads((run_dir / "status.json").read_text())["status"] == "FINISHED"
