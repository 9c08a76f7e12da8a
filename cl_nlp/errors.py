"""The one exception type that means "the user gave us something we cannot use", and how
errors are worded.

The CLI turns a :class:`UserError` (and an operating-system error, a file that is not UTF-8,
input nested too deeply) into a single line on stderr and exit status 2; every other exception
is a bug and keeps its traceback. Messages quote user values through :func:`shown`, which
bounds their length (a 300-byte YAML alias bomb must not become a 300 MB message), and never
quote the contents of a file.
"""

from __future__ import annotations

import errno
import os
import reprlib

VALUE_LIMIT = 200  # characters of a user value a message may quote


class UserError(Exception):
    """Bad input (config, data, CLI option, model path): the message says what and how to fix it."""


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped a run; the message says whether and how it can be resumed.

    Not a ``KeyboardInterrupt``: click would print its own "Aborted" for that.
    """


def _bounded_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 3
    r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 6
    r.maxdict = 6
    r.maxstring = r.maxother = VALUE_LIMIT
    r.maxlong = 40
    return r


_REPR = _bounded_repr()


def shown(value: object, limit: int = VALUE_LIMIT) -> str:
    """``repr(value)`` for a message, at most ``limit`` characters, computed in bounded time.

    Nested containers are cut after a few items and levels (an alias bomb expands lazily into
    ``[[[...], ...], ...]``), long strings and numbers in the middle.

    Example:
        >>> shown("x" * 1000, limit=20)
        "'xxxxxxxx...xxxxxxx'"
        >>> shown([[1, 2], [3, 4]])
        '[[1, 2], [3, 4]]'
    """
    try:
        text = _REPR.repr(value)
    except RecursionError:  # pragma: no cover - reprlib bounds the depth; belt and braces
        text = f"<{type(value).__name__} nested too deeply>"
    if len(text) > limit:
        keep = max(limit - 3, 2)
        text = text[: keep - keep // 2] + "..." + text[len(text) - keep // 2:]
    return text


def shown_path(path: object, limit: int = 120) -> str:
    """A path quoted for a message, its middle cut when longer than ``limit``."""
    return shown(os.fspath(path) if isinstance(path, os.PathLike) else str(path), limit)


# What to do about an operating-system error, by errno: the user can act on these.
_OS_ADVICE = {
    errno.ENOSPC: "no space left on device; free some space (or write elsewhere) and try again",
    errno.EDQUOT: "disk quota exceeded; free some space (or write elsewhere) and try again",
    errno.EROFS: "the file system is read-only; write to a writable folder (e.g. another --output)",
    errno.EACCES: "permission denied; use a folder you can write (or fix its permissions)",
    errno.EPERM: "operation not permitted; use a folder you can write (or fix its permissions)",
    errno.ENAMETOOLONG: "file name too long; use a shorter name or path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.EISDIR: "is a directory where a file was expected; pass a file",
    errno.ENOENT: "no such file or folder; fix the path",
    errno.EEXIST: "already exists",
    errno.ELOOP: "too many symbolic links; fix the path",
    errno.EIO: "input/output error (a failing disk or network file system?); check the device and try again",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and try again",
    errno.ENOMEM: "out of memory; use a smaller model, batch or stream",
    errno.ETIMEDOUT: "timed out; check the network or file system and try again",
}


def describe_os_error(exc: OSError, doing: str | None = None) -> str:
    """One sentence for an OS error: what was being done, on which path, and what to do.

    Example:
        >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/runs/x/results.json"), "writing results")
        "writing results: '/runs/x/results.json': no space left on device; free some space (or write elsewhere) and try again"
    """
    advice = _OS_ADVICE.get(exc.errno) if exc.errno is not None else None
    if advice is None:
        reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
        advice = shown(reason, 150).strip("'\"")
    where = f"{shown_path(exc.filename)}: " if exc.filename else ""
    return (f"{doing}: " if doing else "") + where + advice


def describe_decode_error(exc: UnicodeDecodeError, what: str) -> str:
    """``what`` (a quoted file) is not UTF-8: say where, without quoting the file's bytes."""
    return (f"{what} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8, or check it is the "
            "file you meant")


def one_line(message: str, limit: int = 1000) -> str:
    """``message`` on one line and at most ``limit`` characters: what the CLI prints."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
