"""Faults from the machine (disk full, read-only folders, Ctrl-C), unwritable tracking stores,
and hostile input to the other commands (sweep, streams, compare)."""

from __future__ import annotations

import errno
import os

from tests.hostile.harness import SMALL, Case, Env, resume_args, run_args, sets


def os_error(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


def fault(target: str, code: int):
    """Patch ``module.attr`` to fail with ``code``, as a full or read-only disk does."""
    module, attr = target.rsplit(".", 1)
    return lambda mp, e: mp.setattr(f"{module}.{attr}", os_error(code))


def interrupt_at_write(call: int):
    """Ctrl-C arriving as the ``call``-th results write starts (1: stage 1, 2: stage 2)."""
    def patch(mp, e: Env) -> None:
        from cl_nlp.run_record import RunFolder

        real, calls = RunFolder.write_outputs, []

        def write(*args, **kwargs):
            calls.append(1)
            if len(calls) == call:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        mp.setattr(RunFolder, "write_outputs", write)
    return patch


def store(e: Env, name: str) -> str:
    folder = e.root / "mlflow" / name
    folder.mkdir(parents=True)
    return str(folder)


def read_only_store(e: Env, name: str) -> str:
    return str(e.read_only(e.root / store(e, name)))


def read_only_db(e: Env) -> list[str]:
    folder = e.root / store(e, "rodb")
    (folder / "mlflow.db").write_bytes(b"")
    e.read_only(folder / "mlflow.db")
    e.read_only(folder)
    return run_args(e, "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}", tracking=True)


def _read_only_output(e: Env) -> list[str]:
    return run_args(e, output=str(e.read_only(e.root / store(e, "ro-out"))))


def _read_only_run(e: Env) -> list[str]:
    run = e.victim()
    e.read_only(run)
    return resume_args(run)


def sweep(e: Env, *extra: str) -> list[str]:
    return ["sweep", "--strategies", "naive", "--model", e.model, "--output", str(e.out), "--no-tracking",
            *sets(*SMALL), *extra]


def _streams_show_dir(e: Env) -> list[str]:
    (e.root / "dir.yaml").mkdir()
    return ["streams", "show", str(e.root / "dir.yaml")]


CASES = [
    Case("disk full while checkpointing", lambda e: run_args(e), "no space left on device",
         patch=fault("cl_nlp.runtime.checkpoint.save_model", errno.ENOSPC)),
    Case("read-only disk while checkpointing", lambda e: run_args(e), "read-only",
         patch=fault("cl_nlp.runtime.checkpoint.save_file", errno.EROFS)),
    Case("disk full writing results", lambda e: run_args(e), "no space left on device",
         patch=fault("cl_nlp.evaluation.results.Results.save", errno.ENOSPC)),
    Case("Ctrl-C in task 2", lambda e: run_args(e), "cl-nlp run --resume", status=130, patch=interrupt_at_write(2)),
    Case("Ctrl-C in task 1", lambda e: run_args(e), "interrupted", status=130, patch=interrupt_at_write(1)),
    Case("--output read-only", _read_only_output, "not writable"),
    Case("--resume of a read-only run folder", _read_only_run, "not writable"),
    Case("sqlite store in a read-only folder", lambda e: run_args(
        e, "--tracking-uri", f"sqlite:///{read_only_store(e, 'ro')}/mlflow.db", tracking=True), "not writable"),
    Case("sqlite store file read-only", read_only_db, "not writable"),
    Case("sqlite store under a file", lambda e: run_args(
        e, "--tracking-uri", f"sqlite:///{e.file('mlflow/a-file', 'x')}/mlflow.db", tracking=True), "not a folder"),
    Case("sqlite store 300-char file name", lambda e: run_args(
        e, "--tracking-uri", f"sqlite:///{e.root}/mlflow/{'d' * 300}.db", tracking=True), "too long"),
    Case("sqlite store is a folder", lambda e: run_args(
        e, "--tracking-uri", f"sqlite:///{store(e, 'dbdir')}", tracking=True), "is a directory"),
    Case("file store read-only", lambda e: run_args(
        e, "--tracking-uri", f"file://{read_only_store(e, 'rofile')}/mlruns", tracking=True), "not writable"),
    Case("sweep --seeds -1", lambda e: sweep(e, "--seeds", "-1"), "seed must be in [0, 4294967295]"),
    Case("sweep --run-name ../x", lambda e: sweep(e, "--seeds", "0", "--run-name", "../escaped-sweep"), "--run-name"),
    Case("streams show a folder", _streams_show_dir, "is a directory"),
    Case("streams show binary yaml", lambda e: ["streams", "show", str(e.file("bin.yaml", bytes(range(256)) * 4))],
         "not utf-8 text"),
    Case("compare a 5000-char run id", lambda e: ["compare", "r" * 5000, "--tracking-uri",
                                                  f"sqlite:///{store(e, 'cmp')}/mlflow.db",
                                                  "--output", str(e.root / "mlflow" / "cmp-out")], "run"),
]
