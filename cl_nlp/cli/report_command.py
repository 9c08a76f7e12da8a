"""``cl-nlp report``: a run's verdict and report re-derived from its folder alone."""

from __future__ import annotations

import click

from cl_nlp.cli.group import cli


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--output", default=None, metavar="DIR", help="Write the report here instead of into RUN_DIR.")
def report(run_dir: str, output: str | None) -> None:
    """Re-derive a run's verdict, report.md, retention.json, plots and class reports from RUN_DIR alone.

    Reads RUN_DIR/results.json (no model is loaded), so a finished or interrupted run can be
    re-read after the verdict improves; for an older results file it says what cannot be derived.

    \b
    Example:
      cl-nlp report runs/naive-clinc-cil-seed0-20250101-120000
    """
    from cl_nlp.evaluation.rereport import report_run

    report_run(run_dir, output, echo=click.echo)
