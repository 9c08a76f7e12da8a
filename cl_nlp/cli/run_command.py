"""``cl-nlp run``: one experiment, from flags, a config file and ``--set`` overrides."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from cl_nlp.cli.group import cli
from cl_nlp.errors import RunInterrupted, UserError


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
@click.option("--keep-checkpoint", is_flag=True,
              help="Keep the resume checkpoint (~90 MB for MiniLM) once the run finished (save.keep_checkpoint).")
@click.option("--save-model", is_flag=True,
              help="Write the final model to RUN_DIR/model/: a Hugging Face folder plus the head (save.model).")
def run(strategy: str | None, stream: str | None, config_path: str | None, model: str | None, seed: int | None,
        overrides: tuple[str, ...], output: str | None, run_name: str | None, tracking_uri: str | None,
        experiment: str | None, no_tracking: bool, resume_dir: str | None, keep_checkpoint: bool,
        save_model: bool) -> None:
    """Train a strategy on a stream and measure forgetting after every task.

    Prints the accuracy matrix (rows: after training on task i; columns: task j) with ACC,
    BWT and forgetting, writes config, results JSON and CSVs to the run folder, and logs the
    run to MLflow (metrics acc/<task> with step = tasks learned draw the forgetting curves).

    A checkpoint is written after every task; an interrupted run continues with
    `cl-nlp run --resume RUN_DIR`. Once the run finished its checkpoint is removed
    (--keep-checkpoint keeps it). Exit status: 0 done; 2 bad input or a failed run (one
    `error:` line); 3 done with every result in the run folder, but MLflow logging failed on the way.

    \b
    Examples:
      cl-nlp run --strategy naive
      cl-nlp run --config configs/default.yaml --set train.epochs=1 --seed 1
      cl-nlp run --resume runs/naive-clinc-cil-seed0-20250101-120000
    """
    from cl_nlp.config import load_config
    from cl_nlp.experiment import run_experiment

    extra = list(overrides) + save_overrides(keep_checkpoint, save_model)
    if no_tracking:
        extra.append("tracking.enabled=false")
    if resume_dir is not None:
        from cl_nlp.run_outputs import finished_without_checkpoint
        from cl_nlp.runtime.resume import resume_config

        if finished_without_checkpoint(resume_dir):
            raise UserError(f"--resume {resume_dir}: the run finished and its checkpoint was removed at the end; there "
                            "is nothing to resume (start a new run; --keep-checkpoint keeps a finished run's checkpoint)")

        given = {"--strategy": strategy, "--stream": stream, "--config": config_path, "--model": model, "--seed": seed,
                 "--output": output, "--run-name": run_name, "--experiment": experiment}
        clash = [flag for flag, value in given.items() if value is not None]
        if clash:
            raise UserError(f"--resume takes the experiment from RUN_DIR/config.yaml; drop {clash[0]} "
                            "(only --set, --tracking-uri and --no-tracking may go with it)")
        cfg = resume_config(resume_dir, extra)
        apply_string_overrides(cfg, None, None, tracking_uri, None)
    else:
        cfg = load_config(config_path, extra, strategy=strategy, stream=stream, model=model, seed=seed)
        apply_string_overrides(cfg, output, run_name, tracking_uri, experiment)
    previous = terminate_as_interrupt()
    try:
        outcome = run_experiment(cfg, echo=click.echo, resume=resume_dir is not None)
    except KeyboardInterrupt as exc:  # the run recorded itself as KILLED; say how to go on
        raise RunInterrupted(str(exc)) from exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if outcome.tracking_error:
        pending = ("; its MLflow run is still marked RUNNING: `cl-nlp run --resume "
                   f"{outcome.run_dir}` sets its status once the server is back" if outcome.tracking_ended is False else "")
        click.echo(f"warning: the run finished and {outcome.run_dir} holds every result, but MLflow logging failed "
                   f"({outcome.tracking_error}){pending}; exit status 3", err=True)
        sys.exit(3)


def save_overrides(keep_checkpoint: bool, save_model: bool) -> list[str]:
    return (["save.keep_checkpoint=true"] if keep_checkpoint else []) + (["save.model=true"] if save_model else [])


def terminate_as_interrupt():
    """Make SIGTERM (a scheduler's stop, `kill`) end the run like Ctrl-C: results written, MLflow
    run marked KILLED, checkpoint kept for --resume. Returns the previous handler. (SIGKILL cannot
    be caught; the per-task checkpoint covers it.)"""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


def apply_string_overrides(cfg: Any, output: str | None, run_name: str | None, uri: str | None,
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
