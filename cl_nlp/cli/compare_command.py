"""``cl-nlp compare``: runs read back from any MLflow tracking URI, compared."""

from __future__ import annotations

import click

from cl_nlp.cli.group import cli


@cli.command()
@click.argument("run_ids", nargs=-1)
@click.option("--parent", default=None, metavar="RUN_ID", help="Compare the child runs of this run (a sweep's parent).")
@click.option("--experiment", default=None, metavar="NAME", help="Compare the runs of this MLflow experiment.")
@click.option("--filter", "filter_string", default=None, metavar="EXPR",
              help="MLflow search filter for --parent/--experiment, e.g. \"tags.stream = 'clinc-cil'\".")
@click.option("--tracking-uri", default=None,
              help="MLflow tracking URI, local or a server (http://host:5000). [default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db]")
@click.option("--output", default="comparison", show_default=True, help="Folder for the PNGs, markdown and CSV.")
@click.option("--matrix", default="live", show_default=True,
              help="Which accuracy matrix the curves and heatmaps show: live, task_aware, probe, ...")
@click.option("--log", "log_back", is_flag=True,
              help="Log the comparison back to MLflow: into the --parent run, else into a new run.")
@click.option("--log-to", default=None, metavar="RUN_ID", help="Log the comparison into this existing run.")
def compare(run_ids: tuple[str, ...], parent: str | None, experiment: str | None, filter_string: str | None,
            tracking_uri: str | None, output: str, matrix: str, log_back: bool, log_to: str | None) -> None:
    """Compare MLflow runs: forgetting curves, final accuracy matrices and the summary table.

    Runs are chosen by id, as the children of a --parent run (a sweep), or from an --experiment
    (optionally --filter'ed); they are grouped by strategy (mean ± sample std over seeds) and must
    come from one stream. Writes forgetting_curves.png, final_matrices.png, summary.md,
    summary.csv and report.md to --output; unfinished runs are left out with a note.

    \b
    Examples:
      cl-nlp compare --parent 3f2a...            # a sweep's children
      cl-nlp compare --experiment cl-nlp --filter "tags.stream = 'clinc-cil'" --tracking-uri http://127.0.0.1:5000
      cl-nlp compare RUN_A RUN_B RUN_C --log-to RUN_A
    """
    from cl_nlp.comparison.runs import compare_from_mlflow

    compare_from_mlflow(tracking_uri, run_ids, parent, experiment, filter_string, output, matrix,
                        log_back, log_to, echo=click.echo)
