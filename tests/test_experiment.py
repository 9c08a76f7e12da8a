"""The run recipe and the run folder's life (cl_nlp.experiment, cl_nlp.run_record): the lock
held while the folder is open, status.json through RUNNING/FINISHED/FAILED/KILLED, the outputs
written on failure, and the timings the recipe records from the trainer's stage reports."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from cl_nlp.config import load_config
from cl_nlp.errors import UserError
from cl_nlp.evaluation.results import Results
from cl_nlp.experiment import run_experiment
from cl_nlp.run_record import RunFolder
from cl_nlp.runtime.run_lock import RunFolderLock

TINY = ["stream.n_tasks=2", "stream.classes_per_task=3", "stream.train_per_class=6", "stream.test_per_class=3",
        "train.epochs=1", "train.batch_size=8", "tracking.enabled=false", "eval.probes=false"]
ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, model: str | None = None):
    cfg = load_config(None, TINY, model=model)
    cfg.output = str(tmp_path)
    return cfg


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def test_an_open_folder_is_locked_and_holds_the_resolved_config(tmp_path):
    with RunFolder.open(config(tmp_path), "r", resume=False) as folder:
        saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
        assert saved["run_name"] == "r" and folder.checkpoint is None and folder.writes
        with pytest.raises(UserError, match="in use by another cl-nlp process"):
            RunFolder.open(config(tmp_path), "r", resume=False)
    RunFolderLock.acquire(tmp_path / "r").release()  # closed: free again


def test_a_failure_inside_is_recorded_then_raised_as_one_line(tmp_path):
    results = Results(["a", "b"], "class-incremental")
    with RunFolder.open(config(tmp_path), "r", resume=False) as folder:
        folder.write_status("RUNNING", results)
        assert status(folder.path)["status"] == "RUNNING"
        with pytest.raises(UserError, match="the run stopped: no space left on device"):
            with folder.recording_failure(results):
                raise OSError(28, "No space left on device")
    assert status(tmp_path / "r")["status"] == "FAILED"
    assert (tmp_path / "r" / "results.json").is_file()


def test_an_interrupt_is_recorded_as_killed_with_what_to_do(tmp_path):
    results = Results(["a"], "class-incremental")
    with RunFolder.open(config(tmp_path), "r", resume=False) as folder:
        with pytest.raises(KeyboardInterrupt) as caught:
            with folder.recording_failure(results):
                raise KeyboardInterrupt
    assert status(tmp_path / "r")["status"] == "KILLED"
    assert "no task had finished" in str(caught.value)


def test_a_tiny_run_records_timings_status_and_releases_its_folder(tiny_model, tmp_path):
    cfg = config(tmp_path, tiny_model)
    cfg.run_name = "tiny"
    outcome = run_experiment(cfg, echo=lambda line: None, show_progress=False)
    timings = json.loads((outcome.run_dir / "results.json").read_text())["timings"]
    names = outcome.results.task_names
    assert {"eval_before_seconds", "run_seconds"} <= set(timings)
    assert all(f"train_seconds/{t}" in timings and f"eval_seconds/{t}" in timings for t in names)
    assert status(outcome.run_dir)["status"] == "FINISHED" and status(outcome.run_dir)["stages_done"] == 2
    RunFolderLock.acquire(outcome.run_dir).release()


def test_the_recipe_reads_in_one_sitting():
    """Each function of the run recipe and the run folder stays short (issue 14: under ~40 lines)."""
    for module in ("cl_nlp/experiment.py", "cl_nlp/run_record.py"):
        tree = ast.parse((ROOT / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 40, f"{module}:{node.name} is over 40 lines"


# Files over the limit that are known and owned by work still landing; a new one fails the test.
KNOWN_LONG = {"cl_nlp/evaluation/claim_text.py"}  # the verdict's claim sentences (320 lines): to be split


def test_no_file_of_the_package_is_over_300_lines():
    long = {str(p.relative_to(ROOT)) for p in (ROOT / "cl_nlp").rglob("*.py")
            if len(p.read_text(encoding="utf-8").splitlines()) > 300}
    assert long <= KNOWN_LONG
