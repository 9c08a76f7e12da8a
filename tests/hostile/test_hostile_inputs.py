"""Every hostile input and fault of the table ends in one clear line, the documented exit
status, no traceback, and no byte of an earlier result lost (see :mod:`tests.hostile.harness`).

The table (``cases_*.py``) holds the cases of issue 19 and more: configs, stream files, model
folders, damaged checkpoints, OS faults, tracking stores and the other commands. Each runs
in-process through :func:`cl_nlp.cli.main`, so the boundary it checks is the console script's.
"""

from __future__ import annotations

import json
import os
import shutil
import traceback
import warnings

import pytest

from cl_nlp.cli import main
from tests.hostile.harness import CASE_SECONDS, MESSAGE_LIMIT, Env, TookTooLong, alarm, changes, disarm, snapshot
from tests.hostile.table import CASES


def run_case(args: list[str]) -> tuple[object, str | None, list[str]]:
    """(exit status or the exception that escaped, its traceback, warnings) of ``cl-nlp ARGS`` in-process.

    Warnings are collected because pytest would hide them: run from a shell, Python prints
    each one to stderr (deprecations aside), and the one-line contract counts them.
    """
    previous = alarm(CASE_SECONDS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            main(args)
            status, escaped = 0, None
        except SystemExit as exc:
            status, escaped = exc.code, None
        except (Exception, TookTooLong) as exc:
            status, escaped = type(exc).__name__, traceback.format_exc()
        finally:
            disarm(previous)
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    return status, escaped, shown


def problems(case, status, escaped: str | None, err: str, before: dict, after: dict,
             printed_warnings: list[str] = ()) -> list[str]:
    """Everything wrong with how ``case`` ended (empty: handled cleanly)."""
    found = [f"a warning on stderr: {w[:150]}" for w in printed_warnings]
    if escaped is not None:
        found.append(f"escaped: {escaped.strip().splitlines()[-1][:300]}")
    if status != case.status:
        found.append(f"exit status {status}, expected {case.status}")
    if "Traceback" in err:
        found.append("traceback on stderr")
    lines = err.strip().splitlines()
    if len(lines) != 1:
        found.append(f"{len(lines)} lines on stderr: {[line[:120] for line in lines[:4]]}")
    line = lines[0] if lines else ""
    if not line.startswith(("error: ", "interrupted")):
        found.append(f"not an error line: {line[:200]!r}")
    if len(line) > MESSAGE_LIMIT:
        found.append(f"message of {len(line)} characters")
    if case.fragment.lower() not in line.lower():
        found.append(f"{case.fragment!r} not in {line[:MESSAGE_LIMIT]!r}")
    found += [f"echoed {s!r}" for s in case.absent if s in err]
    found += changes(before, after)
    return found


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile_input_ends_in_one_clear_line(case, tmp_path, tiny_model, base_run, monkeypatch, capfd):
    (tmp_path / "case").mkdir()
    env = Env(tmp_path / "case", tiny_model, base_run)
    try:
        args = case.prepare(env)
        before = snapshot(env.root)
        if case.patch is not None:
            case.patch(monkeypatch, env)
        capfd.readouterr()
        status, escaped, printed_warnings = run_case(args)
        monkeypatch.undo()
        err = capfd.readouterr().err
    finally:
        env.restore()
    after = snapshot(env.root)
    found = problems(case, status, escaped, err, before, after, printed_warnings)
    if os.environ.get("HOSTILE_TALLY"):  # the tally of the issue: tried / clean / mishandled
        with open(os.environ["HOSTILE_TALLY"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"case": case.id, "problems": found, "line": err.strip()[:300]}) + "\n")
    assert not found, "\n".join(found)
    shutil.rmtree(env.root, ignore_errors=True)


def test_the_table_is_large_enough():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
