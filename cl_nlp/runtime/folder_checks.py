"""Whether a folder can be written, checked before anything is written to it (run folders, stores)."""

from __future__ import annotations

import os
from pathlib import Path

from cl_nlp.errors import UserError, describe_os_error, shown_path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the folder a ``mkdir -p`` would start in)."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_writable_folder(path: str | Path, what: str, fix: str) -> None:
    """``path`` is a folder this process can write, or can be created inside one.

    Raises:
        UserError: ``path`` is a file, lies under a file, or the folder is not writable, naming
            ``what`` (e.g. ``--output 'runs'``) and ending with ``fix``.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_dir():
            raise UserError(f"{what} is a file, not a folder; {fix}")
        base = _nearest_existing(p.absolute())
        if not base.is_dir():
            raise UserError(f"{what}: {shown_path(base)} is a file, not a folder; {fix}")
        if not os.access(base, os.W_OK | os.X_OK):
            raise UserError(f"{what}: folder {shown_path(base)} is not writable; {fix}")
        if not p.exists():
            check_name_lengths(p, what, fix)
    except OSError as exc:
        raise UserError(describe_os_error(exc, what)) from None


def check_name_lengths(path: Path, what: str, fix: str) -> None:
    """A name the file system would refuse (over 255 bytes), refused now rather than after training."""
    for part in Path(path).parts:
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            raise UserError(f"{what}: a file or folder name of {len(part)} characters is too long (at most 255); {fix}")


__all__ = ["check_name_lengths", "check_writable_folder"]
