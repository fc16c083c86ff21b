"""The ``scalelaw`` command line: every command registered here, explicitly.

Each command is a module-level function in ``scalelaw/_cli/*.py`` that maps its options
onto one library call and prints the result. Command modules import JAX and other heavy
libraries inside the command functions, keeping ``scalelaw --help`` and the table-only
commands fast to start.

Errors: any :class:`ValueError` (including :class:`scalelaw.ConfigError`),
:class:`OSError` (a missing or unreadable file, a full disk) or bad command-line usage
becomes ``error: ...`` on stderr (one line per problem) and exit status 2. Library errors
name API arguments (``drop_top: ...``); :func:`flag_message` rewrites them here, and only
here, as the options that set them (``--drop-top: ...``).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from scalelaw._cli import coord, fit, hparams, isoflop, score, sweep

try:  # typer >= 0.2x vendors click as typer._click; older typer uses click itself
    from typer._click import exceptions as _exc
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _exc  # type: ignore[no-redef]  # either one, same names

app = typer.Typer(
    name="scalelaw",
    help="muP hyperparameter transfer, sweeps and scaling-law fits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def package_version() -> str:
    """The installed distribution's version (the one in ``pyproject.toml``)."""
    try:
        return version("scalelaw")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"scalelaw {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    """muP hyperparameter transfer, sweeps and scaling-law fits."""


app.command("fit")(fit.fit_cmd)
app.command("fit-isoflop")(isoflop.fit_isoflop_cmd)
app.command("fit-hparams")(hparams.fit_hparams_cmd)
app.command("recommend")(hparams.recommend_cmd)
app.command("score-laws")(score.score_laws_cmd)
app.command("coord-check")(coord.coord_check_cmd)
app.add_typer(sweep.sweep_app, name="sweep")

# API argument names whose CLI option is not simply --<name with dashes>.
_API_FLAGS = {"n_params": "--params", "n_tokens": "--tokens", "root": "--out",
              "parametrization.name": "--parametrization"}


def cli_flags() -> dict[str, str]:
    """``{api argument: option}`` for every option of every command, plus the renames.

    An option's Python name is the library argument it is passed to (``drop_top`` for
    ``--drop-top``), so the map is read off the commands themselves.
    """
    import typer.main

    flags: dict[str, str] = {}

    def walk(command: object) -> None:
        for param in getattr(command, "params", ()):
            opts = [o for o in param.opts if o.startswith("--")]
            flags.setdefault(param.name, opts[0] if opts else param.name.upper())
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return flags | _API_FLAGS


def flag_message(message: str, flags: dict[str, str] | None = None) -> str:
    """Rewrite the leading ``arg, arg:`` of each line of an API error as CLI options.

    >>> flag_message("drop_top: must be >= 0, got -1")
    '--drop-top: must be >= 0, got -1'
    >>> flag_message("n_params, n_tokens: too large")
    '--params, --tokens: too large'
    """
    flags = cli_flags() if flags is None else flags
    out = []
    for line in message.splitlines() or [message]:
        head, sep, rest = line.partition(": ")
        names = [h.strip() for h in head.split(",")]
        if sep and all(n in flags for n in names):
            line = ", ".join(flags[n] for n in names) + sep + rest
        out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn usage and input errors into ``error:`` lines and exit status 2."""
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
        for line in _lines(exc):
            typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


def _lines(exc: BaseException) -> list[str]:
    """``ValueError``: its message, in CLI terms; ``OSError``: ``file: reason``."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else type(exc).__name__
        return [f"{where}: {exc.strerror.lower()}"]
    text = flag_message(str(exc).strip())
    return text.splitlines() or [type(exc).__name__]


if __name__ == "__main__":
    main()
