"""Progress of a run: plain lines in a log file during evaluation and training, at most one per
interval of work, and an ETA worked out by hand."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from cl_nlp.progress import RunProgress, WorkPlan, format_duration
from tests.conftest import FAST_TRAIN, SMALL_STREAM


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_eta_is_the_remaining_planned_work_at_the_measured_rates():
    clock, lines = Clock(), []
    progress = RunProgress(WorkPlan(train_steps=[0, 4, 4], eval_examples=[10, 6, 8]), lines.append, "lines",
                           interval=30.0, clock=clock)
    clock.now = 1.0
    progress.evaluation(0, "t1 test", 5)
    clock.now = 2.0
    progress.evaluation(0, "t2 test", 5)  # 10 examples in 2 s: 0.2 s each
    bar = progress.training(1, "t1", 4)
    assert progress.eta() is None  # no training step measured yet: no honest ETA
    assert "ETA after the first training steps" in progress.timing()
    for t in (3.0, 4.0):
        clock.now = t
        bar.update(1)  # 1 s per step
    # Left: 2 + 4 steps at 1 s, 6 + 8 examples at 0.2 s.
    assert progress.eta() == pytest.approx(6 * 1.0 + 14 * 0.2)
    assert progress.timing() == "run 4s so far, ETA ~9s"


def test_plain_lines_come_at_phase_starts_and_then_at_most_once_per_interval():
    clock, lines = Clock(), []
    progress = RunProgress(WorkPlan([0, 200], [0, 0]), lines.append, "lines", interval=30.0, clock=clock)
    bar = progress.training(1, "t1", 200)
    stamps = [0.0]
    for step in range(1, 101):
        clock.now = float(step)
        before = len(lines)
        bar.update(1)
        if len(lines) > before:
            stamps.append(clock.now)
    assert lines[0].endswith("task 1/1 t1: training: 200 steps")
    assert stamps == [0.0, 30.0, 60.0, 90.0]
    assert "task 1/1 t1: training step 30/200 (15%); run 30s so far, ETA ~2m50s" in lines[1]


def test_no_lines_when_switched_off():
    lines = []
    progress = RunProgress(WorkPlan([0, 3], [5, 5]), lines.append, "off", interval=0.0)
    progress.evaluation(0, "t1 test", 5)
    progress.training(1, "t1", 3).update(1)
    assert lines == []


def test_durations_read_as_people_write_them():
    assert [format_duration(s) for s in (0.4, 42, 185, 3725)] == ["0s", "42s", "3m05s", "1h02m"]


def test_a_run_logged_to_a_file_shows_progress_during_evaluation_and_training(tiny_model, tmp_path):
    log = tmp_path / "run.log"
    args = [sys.executable, "-m", "cl_nlp.cli", "run", "--model", tiny_model, "--output", str(tmp_path / "runs"),
            "--run-name", "logged", "--no-tracking"]
    for item in SMALL_STREAM + FAST_TRAIN:
        args += ["--set", item]
    env = {**os.environ, "CL_NLP_PROGRESS_SECONDS": "0"}  # a line per batch instead of one per 30 s
    with open(log, "w") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert "\r" not in text  # plain lines, no bar redraws
    lines = text.splitlines()

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, f"no line matches {pattern!r} in:\n{text}"
        return found[0]

    # By hand: 2 tasks of 3 intents, 4 test and 8 train examples per intent (probe samples take all 8);
    # before training every test split and every probe sample: 2 x 12 + 2 x 24 = 72 examples.
    start = first(r"evaluating before training: 72 examples")
    during_eval = first(r"evaluating before training: \d+/72 examples \(\d+%\), clinc\d (test|probe); run \d+s so far")
    # 24 training examples in batches of 8, one epoch: 3 steps.
    train_start = first(r"task 1/2 clinc1: training: 3 steps")
    during_train = first(r"task 1/2 clinc1: training step [123]/3 \(\d+%\); run \d+s so far")
    eval_after = first(r"task 1/2: evaluating: \d+/48 examples")  # 2 test splits + 1 probe sample
    stage_line = first(r"stage 1/2 clinc1: .*; run \d+s so far")
    assert start < during_eval < train_start < during_train < eval_after < stage_line
    assert first(r"task 2/2 clinc2: training step") > stage_line


def test_a_trainer_used_on_its_own_shows_its_task_without_a_run_around_it(capsys):
    from types import SimpleNamespace

    from cl_nlp.progress import training_bar

    trainer = SimpleNamespace(show_progress=None, accelerator=SimpleNamespace(is_main_process=True))
    bar = training_bar(trainer, 2, "clinc3", 10)  # no trainer.progress: a display of its own
    bar.update(1)
    bar.close()
    assert capsys.readouterr().out.splitlines()[0].endswith("] task 3 clinc3: training: 10 steps")
    silent = SimpleNamespace(show_progress=True, accelerator=SimpleNamespace(is_main_process=False))
    training_bar(silent, 0, "clinc1", 10).update(1)  # not the main process: nothing at all
    assert capsys.readouterr() == ("", "")
