"""``cl-nlp sweep``: a grid of strategies x seeds as child runs of one MLflow parent run."""

from __future__ import annotations

import signal
import sys

import click

from cl_nlp.cli.group import cli
from cl_nlp.cli.run_command import apply_string_overrides, run, save_overrides, terminate_as_interrupt


def _options_of(command: click.Command, names: tuple[str, ...]):
    """Give the decorated command the same option objects as ``command`` (one definition, one help)."""

    def attach(target: click.Command) -> click.Command:
        target.params.extend(p for p in command.params if p.name in names)
        return target

    return attach


@_options_of(run, ("stream", "config_path", "model", "overrides", "output", "tracking_uri", "experiment", "no_tracking",
                   "keep_checkpoint", "save_model"))
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
          no_tracking: bool, keep_checkpoint: bool, save_model: bool) -> None:
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
    extra = list(overrides) + save_overrides(keep_checkpoint, save_model) + (["tracking.enabled=false"] if no_tracking else [])
    cfg = load_config(config_path, extra, stream=stream, model=model)
    apply_string_overrides(cfg, output, run_name, tracking_uri, experiment)
    previous = terminate_as_interrupt()  # a scheduler's stop ends the sweep like Ctrl-C: parent KILLED
    try:
        outcome = run_sweep(cfg, strategies_, seeds, per_strategy, echo=click.echo, debug=ctx.obj.get("debug", False),
                            orders=orders)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if outcome.failed:
        sys.exit(1)
