"""The ``cl-nlp`` command line (click).

Bad input ends in one line on stderr (``error: ...``) and exit status 2, without a traceback
unless ``--debug`` is given; a bug keeps its traceback. ``cl-nlp run`` exits 3 when the run
finished but MLflow logging failed on the way (every result is in the run folder), 130 when
interrupted (Ctrl-C or SIGTERM; resume with ``--resume``).
"""

from __future__ import annotations

import sys

import click

from cl_nlp.cli.group import cli
from cl_nlp.errors import RunInterrupted, UserError, describe_os_error, one_line
from cl_nlp.runtime.openmp import configure_openmp

# Each module attaches its commands to the group on import.
from cl_nlp.cli import compare_command, listing, report_command, run_command, sweep_command  # noqa: E402,F401  isort: skip


def quiet_libraries() -> None:
    """Keep library chatter (weight-loading reports, store migrations) out of the run's output."""
    import logging
    import warnings

    # A model folder holding a pickle is refused in one line; torch's note about its protocol is noise.
    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the click group, turning bad input into one line.

    This is the one boundary where errors become messages: bad input (:class:`UserError`),
    the operating system's refusals (a full or read-only disk, a name too long, a file where a
    folder belongs), a file that is not UTF-8 and input nested too deeply each end as one
    ``error: ...`` line and exit status 2; an interrupted run as one ``interrupted: ...`` line
    and 130. ``--debug`` re-raises them with their traceback; any other exception is a bug and
    keeps its traceback.
    """
    args = sys.argv[1:] if argv is None else argv
    configure_openmp()  # before anything imports torch: libgomp reads its settings when it loads
    quiet_libraries()
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="cl-nlp", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", 130)
    except click.UsageError as exc:  # bad flag or flag value: one line, like every other bad input
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _fail(f"error: {one_line(exc.format_message(), 300)}{hint}", exc.exit_code)
    except click.ClickException as exc:
        _fail(f"error: {exc.format_message()}", exc.exit_code)
    except RunInterrupted as exc:
        if debug:
            raise
        _fail(f"interrupted: {exc}" if str(exc) else "interrupted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except UserError as exc:
        if debug:
            raise
        _fail(f"error: {exc}", 2)
    except OSError as exc:  # the machine refused (disk full, read-only, ...): nothing a traceback would help with
        if debug:
            raise
        _fail(f"error: {describe_os_error(exc)}", 2)
    except UnicodeDecodeError as exc:  # every known file is read with its name in the message; this is a fallback
        if debug:
            raise
        _fail(f"error: a file is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8", 2)
    except RecursionError:
        if debug:
            raise
        _fail("error: the input is nested too deeply (hundreds of levels); configs and data need a few", 2)


def _fail(message: str, status: int) -> None:
    click.echo(one_line(message), err=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
