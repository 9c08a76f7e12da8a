"""The ``cl-nlp`` command line (click).

Bad input ends in one line on stderr (``error: ...``) and exit status 2, without a traceback
unless ``--debug`` is given; a bug keeps its traceback. ``cl-nlp run`` exits 3 when the run
finished but MLflow logging failed on the way (every result is in the run folder), 130 when
interrupted (Ctrl-C or SIGTERM; resume with ``--resume``).
"""

from __future__ import annotations

import signal
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
@click.option("--resume", "resume_dir", default=None, metavar="RUN_DIR",
              help="Continue an interrupted run from its last checkpoint (its config.yaml; --set may change "
                   "e.g. train.lr, not the stream, strategy, model or seed).")
def run(strategy: str | None, stream: str | None, config_path: str | None, model: str | None, seed: int | None,
        overrides: tuple[str, ...], output: str | None, run_name: str | None, tracking_uri: str | None,
        experiment: str | None, no_tracking: bool, resume_dir: str | None) -> None:
    """Train a strategy on a stream and measure forgetting after every task.

    Prints the accuracy matrix (rows: after training on task i; columns: task j) with ACC,
    BWT and forgetting, writes config, results JSON and CSVs to the run folder, and logs the
    run to MLflow (metrics acc/<task> with step = tasks learned draw the forgetting curves).

    A checkpoint is written after every task; an interrupted run continues with
    `cl-nlp run --resume RUN_DIR`. Exit status: 0 done; 2 bad input or a failed run (one
    `error:` line); 3 done with every result in the run folder, but MLflow logging failed on the way.

    \b
    Examples:
      cl-nlp run --strategy naive
      cl-nlp run --config configs/default.yaml --set train.epochs=1 --seed 1
      cl-nlp run --resume runs/naive-clinc-cil-seed0-20250101-120000
    """
    from cl_nlp.config import load_config
    from cl_nlp.experiment import run_experiment

    extra = list(overrides)
    if no_tracking:
        extra.append("tracking.enabled=false")
    if resume_dir is not None:
        from cl_nlp.checkpoint import resume_config

        given = {"--strategy": strategy, "--stream": stream, "--config": config_path, "--model": model, "--seed": seed,
                 "--output": output, "--run-name": run_name, "--experiment": experiment}
        clash = [flag for flag, value in given.items() if value is not None]
        if clash:
            raise UserError(f"--resume takes the experiment from RUN_DIR/config.yaml; drop {clash[0]} "
                            "(only --set, --tracking-uri and --no-tracking may go with it)")
        cfg = resume_config(resume_dir, extra)
        _apply_string_overrides(cfg, None, None, tracking_uri, None)
    else:
        cfg = load_config(config_path, extra, strategy=strategy, stream=stream, model=model, seed=seed)
        _apply_string_overrides(cfg, output, run_name, tracking_uri, experiment)
    previous = _terminate_as_interrupt()
    try:
        outcome = run_experiment(cfg, echo=click.echo, resume=resume_dir is not None)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if outcome.tracking_error:
        click.echo(f"warning: the run finished and {outcome.run_dir} holds every result, but MLflow logging failed "
                   f"({outcome.tracking_error}); exit status 3", err=True)
        sys.exit(3)


def _terminate_as_interrupt():
    """Make SIGTERM (a scheduler's stop, `kill`) end the run like Ctrl-C: results written, MLflow
    run marked KILLED, checkpoint kept for --resume. Returns the previous handler. (SIGKILL cannot
    be caught; the per-task checkpoint covers it.)"""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


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


@cli.group(invoke_without_command=True)
@click.pass_context
def streams(ctx: click.Context) -> None:
    """List streams: scenario, task count, classes and sizes (default options), and options.

    \b
    Examples:
      cl-nlp streams                                      # every stream
      cl-nlp streams show topics                          # tasks, classes, split sizes
      cl-nlp streams show topics --set train_per_class=50
      cl-nlp streams show configs/streams/example.yaml    # check and describe your stream file
    """
    if ctx.invoked_subcommand is None:
        from cl_nlp.streams import get_stream_spec, stream_names
        from cl_nlp.streams.describe import spec_lines

        for name in stream_names():
            for line in spec_lines(get_stream_spec(name)):
                click.echo(line)


@streams.command("show")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Stream option, repeatable: --set train_per_class=50 --set order=2.")
def streams_show(name: str, overrides: tuple[str, ...]) -> None:
    """Build stream NAME (or a stream YAML file) and print its tasks, classes and split sizes."""
    from pathlib import Path

    from cl_nlp.config import parse_override
    from cl_nlp.streams import build_stream
    from cl_nlp.streams.describe import stream_lines

    options = {}
    for text in overrides:
        keys, value = parse_override(text)
        options[keys[-1]] = value
    if name.endswith((".yaml", ".yml")) or Path(name).is_file():
        name, options = "custom", {**options, "path": name}
    for line in stream_lines(build_stream(name, options)):
        click.echo(line)


def _options_of(command: click.Command, names: tuple[str, ...]):
    """Give the decorated command the same option objects as ``command`` (one definition, one help)."""

    def attach(target: click.Command) -> click.Command:
        target.params.extend(p for p in command.params if p.name in names)
        return target

    return attach


@_options_of(run, ("stream", "config_path", "model", "overrides", "output", "tracking_uri", "experiment", "no_tracking"))
@cli.command()
@click.option("--strategies", "strategy_list", required=True, metavar="NAMES",
              help="Comma-separated strategies, e.g. naive,ewc,replay; see `cl-nlp strategies`.")
@click.option("--seeds", "seed_list", default="0,1", show_default=True, metavar="SEEDS",
              help="Comma-separated seeds; each strategy runs once per seed.")
@click.option("--orders", "order_list", default=None, metavar="ORDERS",
              help="Comma-separated class orders (the stream's class_order_seed), e.g. 0,1,2; each strategy runs "
                   "once per seed and order. [default: the stream's own order]")
@click.option("--strategy-set", "strategy_sets", multiple=True, metavar="STRATEGY.KEY=VALUE",
              help="An option for one strategy of the sweep, repeatable: --strategy-set ewc.lambda=100.")
@click.option("--run-name", default=None,
              help="Sweep name: parent run name and folder <output>/<name>/. [default: sweep-<stream>-<time>]")
@click.pass_context
def sweep(ctx: click.Context, strategy_list: str, seed_list: str, order_list: str | None, strategy_sets: tuple[str, ...],
          run_name: str | None, stream: str | None, config_path: str | None, model: str | None,
          overrides: tuple[str, ...], output: str | None, tracking_uri: str | None, experiment: str | None,
          no_tracking: bool) -> None:
    """Run a grid of strategies x seeds (x class orders) as child runs of one MLflow parent run, then compare them.

    Every child is a complete `cl-nlp run` with the same configuration (the run options below,
    as for `cl-nlp run`) except strategy, seed and, with --orders, the stream's class_order_seed;
    its folder is <output>/<sweep>/<strategy>-seed<seed>[-order<order>]. Class orders are
    replicates like seeds: the summary averages over both.
    Options in the config's strategy section (--set strategy.KEY=VALUE) go to every child; use
    --strategy-set for one strategy's options. A failed child is recorded as a FAILED child run
    and the sweep goes on. At the end the summary table (mean ± sample std over seeds of ACC,
    BWT, forgetting, probe ACC, recoverable share, train time), forgetting curves and final
    matrices are printed / written to <output>/<sweep>/comparison/ and logged to the parent run.

    Exit status: 0 every child finished; 1 some failed (the others are compared); 2 bad input.

    \b
    Examples:
      cl-nlp sweep --strategies naive,ewc,replay,lora-merge,joint --seeds 0,1
      cl-nlp sweep --strategies naive,ewc --seeds 0,1,2 --strategy-set ewc.lambda=1000 --set train.epochs=2
      cl-nlp sweep --strategies naive,seq-star --seeds 0 --orders 0,1,2
    """
    from cl_nlp.config import load_config
    from cl_nlp.sweep import parse_names, parse_seeds, parse_strategy_sets, run_sweep

    strategies_ = parse_names(strategy_list, "strategies")
    seeds = parse_seeds(seed_list)
    orders = parse_seeds(order_list, "orders") if order_list is not None else None
    per_strategy = parse_strategy_sets(strategy_sets, strategies_)
    extra = list(overrides) + (["tracking.enabled=false"] if no_tracking else [])
    cfg = load_config(config_path, extra, stream=stream, model=model)
    _apply_string_overrides(cfg, output, run_name, tracking_uri, experiment)
    previous = _terminate_as_interrupt()  # a scheduler's stop ends the sweep like Ctrl-C: parent KILLED
    try:
        outcome = run_sweep(cfg, strategies_, seeds, per_strategy, echo=click.echo, debug=ctx.obj.get("debug", False),
                            orders=orders)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if outcome.failed:
        sys.exit(1)


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
    from cl_nlp.compare import compare_from_mlflow

    compare_from_mlflow(tracking_uri, run_ids, parent, experiment, filter_string, output, matrix,
                        log_back, log_to, echo=click.echo)


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
    except click.UsageError as exc:  # bad flag or flag value: one line, like every other bad input
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
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
