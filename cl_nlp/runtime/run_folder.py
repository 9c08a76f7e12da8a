"""Where a run writes: its folder name, the folder it goes in, and opening it under its lock.

A run writes ``<output>/<run name>/``. The run name must be one folder name (``../x``, an
absolute path or ``a/b`` would write outside ``--output``), and ``--output`` must be a folder
this process can write, or one it can create. Both are checked with the config, before a
model is loaded or a file written, so a typo costs a second, not a training run.
:func:`open_run_folder` then takes the folder's lock before anything in it is changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from cl_nlp.errors import UserError, describe_os_error, shown, shown_path
from cl_nlp.runtime.checkpoint import Checkpoint, clean_partial_checkpoints, read_state, verify_checkpoint
from cl_nlp.runtime.folder_checks import check_writable_folder
from cl_nlp.runtime.resume import START_OVER, find_resumable, holds_a_run
from cl_nlp.runtime.run_lock import RunFolderLock

if TYPE_CHECKING:  # pragma: no cover
    from cl_nlp.tracking import Tracker

NAME_MAX = 200  # characters of a run name; file systems allow 255 bytes, checkpoint names add a few


def check_run_name(name: str | None, flag: str = "--run-name") -> None:
    """Refuse a run name that is not a single, ordinary folder name.

    Example:
        >>> check_run_name("naive-seed0")
        >>> check_run_name("../x")
        Traceback (most recent call last):
        ...
        cl_nlp.errors.UserError: --run-name '../x' must be a single folder name (no '/', not '..'); the run is written to <output>/<run name>
    """
    if name is None:
        return
    fix = "the run is written to <output>/<run name>"
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{flag} must be a non-empty folder name; {fix}")
    if "\0" in name:
        raise UserError(f"{flag} {shown(name.replace(chr(0), '?'), 60)} holds a NUL character; use letters, digits, '-', '_' or '.'")
    if "/" in name or "\\" in name or name in (".", "..") or os.path.isabs(name):
        raise UserError(f"{flag} {shown(name, 60)} must be a single folder name (no '/', not '..'); {fix}")
    if len(name) > NAME_MAX or len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise UserError(f"{flag} is {len(name)} characters long; use at most {NAME_MAX}")


def check_output(output: str) -> None:
    """``--output``: an existing writable folder, or a path where one can be made."""
    check_writable_folder(output, f"--output {shown_path(output)}", "pass a folder you can write")


def check_run_folder(run_dir: Path) -> None:
    """An existing run folder (``--resume``, a relaunch) must be a writable folder."""
    try:
        exists = run_dir.exists()
    except OSError as exc:
        raise UserError(describe_os_error(exc, "run folder")) from None
    if exists:
        check_writable_folder(run_dir, f"run folder {shown_path(run_dir)}",
                              "fix its permissions, or copy it somewhere writable and resume the copy")


def open_run_folder(run_dir: Path, resume: bool, make_tracker: Callable[[Checkpoint | None], Tracker]
                    ) -> tuple[RunFolderLock, Checkpoint | None, Tracker]:
    """Lock the run folder before anything in it is changed; return (lock, checkpoint, tracker).

    A resume locks first, then removes a killed writer's leftovers and checks the checkpoint it
    continues from (hashes, contents: a damaged one is refused before the folder is touched),
    then reaches the tracker. A new run reaches the tracker first (a bad URI leaves no folder
    behind), then makes and locks its folder. A second process on a locked folder is refused
    having read, not changed, anything in it.
    """
    check_run_folder(run_dir)
    if not resume and holds_a_run(run_dir):  # read-only: refused before a tracking server is reached
        raise _holds_a_run(run_dir)
    lock = ckpt = None
    try:
        if resume:
            lock = RunFolderLock.acquire(run_dir)
            clean_partial_checkpoints(run_dir)
            ckpt = find_resumable(run_dir)
            verify_checkpoint(ckpt, damaged_advice(run_dir, ckpt))
        tracker = make_tracker(ckpt)  # from the checkpoint: the URI the run was logged to
        if lock is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = RunFolderLock.acquire(run_dir)  # a second process on this folder is refused, not interleaved
            clean_partial_checkpoints(run_dir)
            if holds_a_run(run_dir):  # another run took the folder while the tracker was made
                raise _holds_a_run(run_dir)
        return lock, ckpt, tracker
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _holds_a_run(run_dir: Path) -> UserError:
    return UserError(f"run folder {shown_path(run_dir)} already holds a run; continue it with "
                     f"`cl-nlp run --resume {run_dir}` or pick another --run-name")


def damaged_advice(run_dir: Path, ckpt: Checkpoint) -> str:
    """What to do when ``ckpt`` cannot be resumed: an older whole checkpoint if one is left, else start over."""
    older = [p for p in sorted((run_dir / "checkpoints").glob("stage-*")) if p != ckpt.path and read_state(p)]
    if older:
        return (f"an older checkpoint, checkpoints/{older[-1].name}, is left: move checkpoints/{ckpt.path.name} out "
                "of the run folder and --resume again")
    return START_OVER


__all__ = ["NAME_MAX", "check_output", "check_run_folder", "check_run_name", "check_writable_folder", "open_run_folder"]
