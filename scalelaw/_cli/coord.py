"""``scalelaw coord-check``: the muP coordinate check from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelaw._cli._common import check_output_path, parse_int_list, print_json


def coord_check_cmd(
    model: Annotated[str, typer.Option(help="Reference model: transformer or mlp.")
                     ] = "transformer",
    parametrization: Annotated[str, typer.Option(help="sp, mup or completep.")] = "mup",
    widths: Annotated[str, typer.Option(help="Comma-separated widths (>= 2).")
                      ] = "64,256,1024",
    steps: Annotated[int, typer.Option(help="Recorded steps; t = 1 is at init.")] = 3,
    optimizer: Annotated[str, typer.Option(help="adam or sgd.")] = "adam",
    lr: Annotated[float | None, typer.Option(
        help="Learning rate (default 1e-2 Adam, 0.1 SGD).")] = None,
    depth: Annotated[int, typer.Option(help="Number of blocks / hidden layers.")] = 2,
    seeds: Annotated[int, typer.Option(
        help="Seeds (inits) averaged; their spread widens the bound.")] = 3,
    bound: Annotated[float | None, typer.Option(
        help="Fixed bound: stable when widest/narrowest l1 is within 1/b..b (default 1.2 "
             "per 4x of width, widened by 3 standard errors of the seeds' noise).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option(
        help="Write the log-log figure to this file (png, pdf, svg).")] = None,
) -> None:
    """Check that activations stay stable across widths.

    The muP coordinate check: trains a few steps at each width (several seeds) and compares
    each module's mean |activation| at the widest and the narrowest width.

    Exit codes: 0 every module stable; 1 a module flagged ("blows up" or "vanishes");
    2 bad input (one line on stderr naming the flag, nothing written).
    """
    width_list = parse_int_list(widths, "widths")
    check_output_path(plot, "plot", suffixes=(".png", ".pdf", ".svg"))
    from scalelaw.models.coord_check import coord_check

    result = coord_check(model, widths=width_list, parametrization=parametrization, steps=steps,
                         optimizer=optimizer, lr=lr, depth=depth, seeds=seeds, bound=bound)
    if plot is not None:
        result.plot(plot, title=f"{model}, {parametrization}, {optimizer}")
    if json_out:
        print_json({
            "model": model, "parametrization": parametrization, "widths": width_list,
            "optimizer": optimizer, "steps": steps, "bound": result.bound, "stable": result.stable,
            "modules": result.verdicts.to_dict("records"),
        })
    else:
        _print_table(result, model, parametrization, width_list)
    raise typer.Exit(0 if result.stable else 1)


def _print_table(result, model: str, parametrization: str, widths: list[int]) -> None:  # noqa: ANN001
    from rich.table import Table

    from scalelaw._cli._common import console as make_console

    colour = {"stable": "green", "blows up": "red", "vanishes": "yellow"}
    table = Table(title=f"coordinate check: {model}, {parametrization}, widths {widths}")
    table.add_column("module")
    table.add_column(f"min l1({widths[-1]})/l1({widths[0]})", justify="right")
    table.add_column("max", justify="right")
    table.add_column("bound", justify="right")
    table.add_column("verdict")
    for row in result.verdicts.itertuples():
        c = colour[row.verdict]
        table.add_row(row.module, f"{row.min_ratio:.3f}", f"{row.max_ratio:.3f}",
                      f"{row.bound:.3f}", f"[{c}]{row.verdict}[/{c}]")
    console = make_console()
    console.print(table)
    n_bad = int((result.verdicts["verdict"] != "stable").sum())
    verdict = "[green]all modules stable[/green]" if n_bad == 0 else (
        f"[red]{n_bad} module(s) not stable[/red]")
    seeds = int(result.data["seeds"].max())
    widened = bool((result.verdicts["bound"] > result.bound * (1 + 1e-9)).any())
    console.print(f"{verdict} (bound {result.bound:.3g}" + (
        f", widened per module by the spread of {seeds} seeds)" if widened else ")"))
