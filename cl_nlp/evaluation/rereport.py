"""``cl-nlp report RUN_DIR``: re-derive a run's verdict and report from its folder alone.

Reads ``RUN_DIR/results.json`` — the matrices, the per-example correctness the intervals need,
the test-set class counts, the classification reports — and writes ``report.md``,
``retention.json``, the PNG figures and ``classification_report.csv`` again, without loading a
model. Old runs can so be re-read after the verdict improves. A results file from before the
per-example correctness was saved gets what can be derived from it (unpaired intervals from the
test sizes in its classification reports, or no intervals at all), and the report says what
cannot be derived.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cl_nlp.errors import UserError
from cl_nlp.evaluation.results import SCHEMA_VERSION, Results
from cl_nlp.evaluation.retention_overall import assess_run
from cl_nlp.evaluation.verdict import write_run_report


def load_run_results(run_dir: str | Path) -> tuple[Results, int]:
    """The run folder's results and the schema version of its results file (1 = before versions existed)."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise UserError(f"{str(folder)!r} is not a folder; give a run folder such as runs/<run-name>")
    path = folder / "results.json"
    if not path.is_file():
        raise UserError(f"{str(folder)!r} holds no results.json: not a cl-nlp run folder, or the run stopped before "
                        "it wrote one")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        results = Results.from_dict(data)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} is not a readable results file ({type(exc).__name__}: {exc})") from None
    if results.stages_done < 1:
        raise UserError(f"{path} records no finished task yet: nothing to report")
    return results, int(data.get("schema_version", 1))


def report_run(run_dir: str | Path, output: str | Path | None = None, echo: Callable[[str], None] = print) -> str:
    """Write the report of ``run_dir`` into ``output`` (default: the run folder itself); return the verdict."""
    results, schema = load_run_results(run_dir)
    target = Path(output) if output is not None else Path(run_dir)
    target.mkdir(parents=True, exist_ok=True)
    text = write_run_report(results, target)
    echo(text)
    if schema < SCHEMA_VERSION:
        echo(f"note: results file schema {schema} (this cl-nlp writes {SCHEMA_VERSION}); re-derived what it holds")
    for note in assess_run(results).notes:
        echo(f"note: {note}")
    echo(f"report written to {target}/ (report.md, retention.json, retention_curves.png, matrices.png"
         + (", classification_report.csv" if results.extra.get("classification_reports") else "") + ")")
    return text
