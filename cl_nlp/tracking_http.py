"""How long MLflow's HTTP calls may take: retry/timeout limits and a quick reachability check.

A tracking server that stopped answering must cost a run seconds, not the minutes MLflow's own
defaults allow (120 s per try, several tries).
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import Iterator

from cl_nlp.errors import UserError, shown

# MLflow's HTTP client retries a failed request 7 times with exponential backoff and waits up
# to 120 s for an answer: minutes per call, during which training would stall. cl-nlp's calls
# run with one retry and a 10 s timeout (at most ~21 s for a server that stopped answering);
# once a call has failed, with a single 3 s try, and logging pauses for a minute between tries.
# Variables the user set win; nothing is changed for other code in the process.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
HTTP_AFTER_FAILURE = {**HTTP_DEFAULTS, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
REACH_TIMEOUT = 5.0    # seconds the start-up reachability check waits for a tracking server
RETRY_COOLDOWN = 60.0  # after a logging call failed, seconds before logging is tried again


@contextmanager
def http_limits(values: dict[str, str]) -> Iterator[None]:
    """MLflow's HTTP retry/timeout variables set to ``values`` for the calls inside, unless the
    user set them; restored afterwards (MLflow reads them at every request)."""
    added = [k for k in values if k not in os.environ]
    for key in added:
        os.environ[key] = values[key]
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def first_line(exc: BaseException, limit: int = 300) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT) -> None:
    """For an ``http(s)`` tracking URI, fail within ``timeout`` seconds if no server answers.

    Any HTTP answer (even 401/404) counts as reachable; refused connections, timeouts and
    unknown hosts raise :class:`UserError`.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc or type(exc).__name__
        raise UserError(f"MLflow tracking server {shown(uri, 120).strip(chr(39))} is not reachable ({reason}); start it, pass another "
                        "--tracking-uri, or use --no-tracking") from None


__all__ = ["HTTP_AFTER_FAILURE", "HTTP_DEFAULTS", "REACH_TIMEOUT", "RETRY_COOLDOWN", "check_reachable", "first_line",
           "http_limits"]
