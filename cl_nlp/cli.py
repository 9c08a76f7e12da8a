"""The ``cl-nlp`` command line (click).

Bad input ends in one line on stderr (``error: ...``) and exit status 2, without a traceback
unless ``--debug`` is given; a bug keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cl_nlp.errors import UserError


def _strategy_help() -> str:
    from cl_nlp.strategies import strategy_names

    return "Strategy name (" + ", ".join(strategy_names()) + "); see `cl-nlp strategies`."


def _stream_help() -> str:
    from cl_nlp.streams import stream_names

    return "Stream name (" + ", ".join(stream_names()) + "); see `cl-nlp streams`."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="cl-nlp")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """cl-nlp: continual learning for NLP.

    Fine-tune an encoder on a stream of tasks with a strategy (naive, ...), measure how much of
    each earlier task is retained after every task, and log everything to MLflow.

    \b
    Quick start (offline, embedded MiniLM, CLINC150 in 5 class-incremental tasks):
      cl-nlp run --strategy naive
      mlflow ui   # then open the printed compare link
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command()
@click.option("--strategy", "strategy", default=None, help="Strategy name (naive, ...); see `cl-nlp strategies`. [default: naive]")
@click.option("--stream", "stream", default=None, help="Stream name; see `cl-nlp streams`. [default: clinc-cil]")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Experiment YAML (see configs/default.yaml for every field).")
@click.option("--model", default=None, help="Local model folder or hub id. [default: embedded all-MiniLM-L6-v2]")
@click.option("--seed", type=int, default=None, help="Random seed for initialisation, batching and sampling. [default: 0]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, repeatable: --set train.epochs=2 --set strategy.lambda=100.")
@click.option("--output", default=None, help="Parent folder of run folders. [default: runs]")
@click.option("--run-name", default=None, help="Run folder and MLflow run name. [default: <strategy>-<stream>-seed<seed>-<time>]")
@click.option("--tracking-uri", default=None, help="MLflow tracking URI. [default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db]")
@click.option("--experiment", default=None, help="MLflow experiment name. [default: cl-nlp]")
@click.option("--no-tracking", is_flag=True, help="Do not log to MLflow (results still go to the run folder).")
def run(strategy: str | None, stream: str | None, config_path: str | None, model: str | None, seed: int | None,
        overrides: tuple[str, ...], output: str | None, run_name: str | None, tracking_uri: str | None,
        experiment: str | None, no_tracking: bool) -> None:
    """Train a strategy on a stream and measure forgetting after every task.

    Prints the accuracy matrix (rows: after training on task i; columns: task j) with ACC,
    BWT and forgetting, writes config, results JSON and CSVs to the run folder, and logs the
    run to MLflow (metrics acc/<task> with step = tasks learned draw the forgetting curves).

    \b
    Examples:
      cl-nlp run --strategy naive
      cl-nlp run --config configs/default.yaml --set train.epochs=1 --seed 1
    """
    from cl_nlp.config import load_config
    from cl_nlp.experiment import run_experiment

    extra = list(overrides)
    if no_tracking:
        extra.append("tracking.enabled=false")
    cfg = load_config(config_path, extra, strategy=strategy, stream=stream, model=model, seed=seed)
    _apply_string_overrides(cfg, output, run_name, tracking_uri, experiment)
    run_experiment(cfg, echo=click.echo)


def _apply_string_overrides(cfg: Any, output: str | None, run_name: str | None, uri: str | None,
                            experiment: str | None) -> None:
    # Strings from flags are taken verbatim (``--run-name 2024`` must stay a string, not a YAML int).
    if output is not None:
        cfg.output = output
    if run_name is not None:
        cfg.run_name = run_name
    if uri is not None:
        cfg.tracking.uri = uri
    if experiment is not None:
        cfg.tracking.experiment = experiment


@cli.command()
def strategies() -> None:
    """List strategies with a one-line summary and their options (name, type, default)."""
    from cl_nlp.options import describe_options
    from cl_nlp.strategies import get_strategy_spec, strategy_names

    for name in strategy_names():
        spec = get_strategy_spec(name)
        click.echo(f"{name:<12} {spec.summary}")
        for opt, tp, default, help_text in describe_options(spec.options_cls):
            click.echo(f"    {opt} ({tp}, default {default!r})" + (f": {help_text}" if help_text else ""))


@cli.command()
def streams() -> None:
    """List streams with their scenario and a one-line summary."""
    from cl_nlp.options import describe_options
    from cl_nlp.streams import get_stream_spec, stream_names

    for name in stream_names():
        spec = get_stream_spec(name)
        click.echo(f"{name:<14} {spec.scenario:<19} {spec.summary}")
        for opt, tp, default, help_text in describe_options(spec.options_cls):
            click.echo(f"    {opt} ({tp}, default {default!r})" + (f": {help_text}" if help_text else ""))


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading reports, store migrations) out of the run's output."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the click group, turning bad input into one line."""
    args = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="cl-nlp", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
