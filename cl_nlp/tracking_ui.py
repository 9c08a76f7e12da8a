"""How to look at a run in MLflow's UI: the command that serves a local store, and the link."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from cl_nlp.tracking import Tracker


def ui_command(uri: str) -> str | None:
    """``<this python> -m mlflow ui --backend-store-uri <uri>``: runs with the interpreter cl-nlp runs
    under, so it works without an activated virtual environment; a relative sqlite path is made
    absolute, so it works from any folder. ``None`` for ``http(s)`` URIs (a server is its own UI)."""
    if uri.startswith(("http://", "https://")):
        return None
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return f"{shlex.quote(sys.executable)} -m mlflow ui --backend-store-uri {shlex.quote(uri)}"


def ui_hint(tracker: Tracker) -> str:
    """How to look at a run: the command serving a local store's UI (this interpreter), then the link."""
    uri = getattr(tracker, "uri", None)
    url = tracker.compare_url()
    command = ui_command(uri) if uri else None
    if command is None:
        return f"forgetting curves: {url}"
    return f"forgetting curves: start MLflow's UI with\n  {command}\nthen open {url}"


__all__ = ["ui_command", "ui_hint"]
