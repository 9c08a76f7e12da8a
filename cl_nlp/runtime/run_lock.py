"""One process at a time per run folder.

Two processes writing one run folder (the same ``--run-name`` launched twice, or a
``--resume`` of a run that is still going) would interleave checkpoints and results. The run
takes an exclusive ``flock`` on ``<run folder>/.lock`` for its whole life. The kernel drops the
lock when the process ends, ``kill -9`` included, so a crashed run never leaves a stale lock
behind and ``--resume`` works right after it. On systems without ``fcntl`` (Windows) nothing is
locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from cl_nlp.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"


class RunFolderLock:
    """Held while a run writes its folder; :meth:`release` (or process exit) lets the next one in.

    Example:
        >>> lock = RunFolderLock.acquire(Path("runs/naive-default"))  # doctest: +SKIP
        >>> lock.release()  # doctest: +SKIP
    """

    def __init__(self, fd: int | None):
        self.fd = fd

    @classmethod
    def acquire(cls, run_dir: Path) -> "RunFolderLock":
        """Lock ``run_dir`` (which must exist), or raise :class:`UserError` naming the process holding it."""
        if fcntl is None:
            return cls(None)
        path = run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(f"run folder {str(run_dir)!r} is in use by another cl-nlp process ({holder}); wait for it "
                            "to end, or pick another --run-name") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        return cls(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, since {info['since']}"
    except (OSError, ValueError, KeyError):
        return "unknown pid"
