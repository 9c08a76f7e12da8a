"""The ``cl-nlp`` click group every command module attaches to."""

from __future__ import annotations

import shlex
import sys

import click

# The `mlflow ui` hint names this interpreter: a bare `mlflow` is not on PATH unless the
# virtual environment is active.
_CLI_HELP = """cl-nlp: continual learning for NLP.

    Fine-tune an encoder on a stream of tasks with a strategy (naive, ...), measure how much of
    each earlier task is retained after every task, and log everything to MLflow.

    \b
    Quick start (offline, embedded MiniLM, CLINC150 in 5 class-incremental tasks):
      cl-nlp run --strategy naive
      {python} -m mlflow ui --backend-store-uri sqlite:///mlflow.db
      # then open the compare link the run printed
    """


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             help=_CLI_HELP.format(python=shlex.quote(sys.executable)))
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="cl-nlp")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
