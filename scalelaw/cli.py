"""The ``scalelaw`` command line.

Sub-commands live in ``scalelaw/_cli/*.py``; each module there exposes
``register(app: typer.Typer) -> None`` and is discovered automatically, so adding a
command never touches this file. Command modules import JAX and other heavy libraries
inside the command functions, keeping ``scalelaw --help`` and the table-only commands
fast to start.

Errors: any :class:`ValueError` (including :class:`scalelaw.ConfigError`),
:class:`OSError` (a missing or unreadable file, a full disk) or bad command-line usage
becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from scalelaw import _cli

try:  # typer >= 0.2x vendors click as typer._click; older typer uses click itself
    from typer._click import exceptions as _exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _exc

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
    except _exc.NoArgsIsHelpError:  # bare `scalelaw`: the help has been printed
        sys.exit(0)
    except _exc.UsageError as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(exc: BaseException) -> str:
    """``ValueError``: its message; ``OSError``: ``file: reason`` (no errno noise)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else type(exc).__name__
        return f"{where}: {exc.strerror.lower()}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":
    main()
