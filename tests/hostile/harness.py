"""What every hostile case is run through and what it must show.

A case prepares files under a fresh folder (``Env.root``), returns the command line, and may
patch a fault in (disk full, Ctrl-C). It is then run in-process through :func:`cl_nlp.cli.main`
and must end with: the documented exit status (2 unless said otherwise), exactly one line on
stderr starting with ``error:`` (or ``interrupted``), no traceback, that line under
``MESSAGE_LIMIT`` characters and holding the case's fragment, nothing it must not echo, and
every file that existed before byte-for-byte unchanged, with new files only where a new run
or a tracking store may write them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

MESSAGE_LIMIT = 400
CASE_SECONDS = 120  # a case that takes longer is mishandled (MLflow's retries on a read-only store took ~122 s)
SMALL = ["stream.n_tasks=2", "stream.classes_per_task=3", "stream.train_per_class=8", "stream.test_per_class=4",
         "train.epochs=1", "train.batch_size=8", "eval.probes=false"]
# New files may appear only here: the new run's folder and tracking stores.
NEW_FILES_ALLOWED = ("out/new/", "mlflow/")


@dataclass
class Env:
    """Where a case runs: a fresh ``root`` holding ``out`` (with an earlier run in ``out/earlier``)."""

    root: Path
    model: str
    base_run: Path  # a KILLED ewc run (2 tasks, checkpoint after task 1), copied, never changed
    out: Path = field(init=False)
    undo: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.out = self.root / "out"
        self.out.mkdir()
        shutil.copytree(self.base_run, self.out / "earlier")

    def read_only(self, path: Path) -> Path:
        """Make ``path`` unwritable, for root too (root ignores mode bits: the immutable attribute)."""
        if os.geteuid() != 0:
            mode = path.stat().st_mode
            path.chmod(0o555 if path.is_dir() else 0o444)
            self.undo.append(lambda: path.chmod(mode))
            return path
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            import pytest

            pytest.skip("cannot make a folder read-only here (root without chattr)")
        self.undo.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=True))
        return path

    def restore(self) -> None:
        while self.undo:
            self.undo.pop()()

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def victim(self) -> Path:
        """A copy of the base run to damage and resume."""
        path = self.out / "victim"
        shutil.copytree(self.base_run, path)
        return path

    def checkpoint(self, run: Path) -> Path:
        (stage,) = sorted((run / "checkpoints").glob("stage-*"))
        return stage


@dataclass
class Case:
    """One hostile input or fault. ``prepare`` makes files and returns the arguments of ``cl-nlp``."""

    id: str
    prepare: Callable[[Env], list[str]]
    fragment: str  # the one line contains this (case-insensitive)
    status: int = 2
    absent: tuple[str, ...] = ()  # strings the output must never contain (file contents, secrets)
    patch: Callable[[Any, Env], None] | None = None  # (monkeypatch, env): inject a fault
    marks: tuple = ()


def sets(*items: str) -> list[str]:
    return [x for item in items for x in ("--set", item)]


def run_args(e: Env, *extra: str, tracking: bool = False, small: bool = True, name: str | None = "new",
             output: str | None = None, model: str | None = None) -> list[str]:
    """``cl-nlp run`` on the tiny model into ``out/new``; ``extra`` comes last (and wins)."""
    args = ["run", "--model", model or e.model, "--output", output or str(e.out)]
    if name is not None:
        args += ["--run-name", name]
    if not tracking:
        args.append("--no-tracking")
    return args + (sets(*SMALL) if small else []) + list(extra)


def resume_args(run: Path, *extra: str) -> list[str]:
    return ["run", "--resume", str(run), "--no-tracking", *extra]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (run-folder locks aside) -> its SHA-256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changed = [f"changed or lost: {k}" for k in before if after.get(k) != before[k]]
    return changed + [f"new: {k}" for k in after if k not in before and not k.startswith(NEW_FILES_ALLOWED)]


class TookTooLong(BaseException):
    """Raised by the alarm: a case ran past CASE_SECONDS."""


def alarm(seconds: int):
    def expire(signum, frame):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    return previous


def disarm(previous) -> None:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---- damaging files ---------------------------------------------------------------------------

def flip_bytes(path: Path, at: float = 0.5, count: int = 4) -> None:
    """XOR ``count`` bytes in the middle of the file's data (past a safetensors header)."""
    data = bytearray(path.read_bytes())
    start = _data_start(data) if path.suffix == ".safetensors" else 0
    i = start + int((len(data) - start - count) * at)
    for k in range(i, i + count):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def _data_start(data: bytes) -> int:
    (n,) = struct.unpack("<Q", data[:8])
    return 8 + n


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def corrupt_header(path: Path) -> None:
    """A safetensors file whose header length is absurd and whose header is not JSON."""
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", 2**40)
    data[8:16] = b"\xff\xfe{notjs"
    path.write_bytes(bytes(data))


def rehash(checkpoint: Path) -> None:
    """Make the manifest (when there is one) match the files again: a change made by a writer, not by rot."""
    manifest = checkpoint / "manifest.json"
    if not manifest.is_file():
        return
    info = json.loads(manifest.read_text())
    info["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in sorted(checkpoint.iterdir()) if p.is_file() and p.name != "manifest.json"}
    manifest.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
