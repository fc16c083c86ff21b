"""The ``scalelaw`` command line.

Sub-commands live in ``scalelaw/_cli/*.py``; each module there exposes
``register(app: typer.Typer) -> None`` and is discovered automatically, so adding a
command never touches this file. Command modules import JAX and other heavy libraries
inside the command functions, keeping ``scalelaw --help`` and the table-only commands
fast to start.

Errors: any :class:`ValueError` (including :class:`scalelaw.ConfigError`),
:class:`FileNotFoundError` or bad command-line usage becomes one line on stderr and
exit status 2.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer

from scalelaw import _cli

app = typer.Typer(
    name="scalelaw",
    help="muP hyperparameter transfer, sweeps and scaling-law fits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _info in sorted(pkgutil.iter_modules(_cli.__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"scalelaw._cli.{_info.name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn usage and input errors into one line and exit status 2."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="scalelaw")
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `scalelaw`: help was asked for
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except (ValueError, FileNotFoundError, IsADirectoryError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        click.echo(f"error: {msg}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
