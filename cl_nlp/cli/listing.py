"""``cl-nlp strategies`` and ``cl-nlp streams``: what can be run, with its options."""

from __future__ import annotations

import click

from cl_nlp.cli.group import cli


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
