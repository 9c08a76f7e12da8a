"""Local tracking stores checked before MLflow opens them.

MLflow retries opening a sqlite database it cannot write for about two minutes, and a
``file:`` store in a read-only folder fails only at the first write. cl-nlp checks a local
store's folder (and database file) can be written before the tracker is made, so a bad
``--tracking-uri`` fails in a second, before anything is loaded.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from cl_nlp.errors import UserError, shown
from cl_nlp.runtime.folder_checks import check_name_lengths, check_writable_folder


def _local_store(uri: str) -> tuple[str, Path] | None:
    """("sqlite" | "file", path) of a tracking URI that names a local store; ``None`` otherwise."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):].split("?", 1)[0]
        return ("sqlite", Path(path)) if path and path != ":memory:" else None
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return "file", Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return "file", Path(uri)
    return None


def check_store_writable(uri: str) -> None:
    """A local store (sqlite database, ``file:`` folder) that cannot be written fails here, at
    once; MLflow would retry opening it for about two minutes before giving up."""
    store = _local_store(uri)
    if store is None:
        return
    kind, path = store
    what = f"MLflow tracking URI {shown(uri, 120)}"
    fix = "pass another --tracking-uri, or use --no-tracking"
    if kind == "file":
        check_writable_folder(path, what, fix)
        return
    check_name_lengths(path, what, fix)
    try:
        if path.is_dir():
            raise UserError(f"{what}: the database path is a directory, not a file; name a file (e.g. "
                            f"sqlite:///mlflow.db), or {fix}")
        exists = path.exists()
    except OSError as exc:
        raise UserError(f"{what}: {exc.strerror or exc}; {fix}") from None
    check_writable_folder(path.parent, what, fix)  # sqlite writes its journal beside the database
    if exists and not os.access(path, os.W_OK):
        raise UserError(f"{what}: the database file is not writable; {fix}")
