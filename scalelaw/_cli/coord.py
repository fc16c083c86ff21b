"""``scalelaw coord-check``: the muP coordinate check from the command line."""

from __future__ import annotations

from pathlib import Path

import typer

from scalelaw._cli._common import parse_int_list, print_json


def coord_check_command(
    model: str = typer.Option("transformer", help="Reference model: transformer or mlp."),
    parametrization: str = typer.Option("mup", help="sp, mup or completep."),
    widths: str = typer.Option("64,256,1024", help="Comma-separated widths (>= 2)."),
    steps: int = typer.Option(3, help="Recorded steps; t = 1 is at init."),
    optimizer: str = typer.Option("adam", help="adam or sgd."),
    lr: float | None = typer.Option(None, help="Learning rate (default 1e-2 Adam, 0.1 SGD)."),
    depth: int = typer.Option(2, help="Number of blocks / hidden layers."),
    seeds: int = typer.Option(1, help="Seeds averaged."),
    bound: float | None = typer.Option(
        None, help="Stable when widest/narrowest l1 is within 1/b..b (default 1.2 per 4x)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: Path | None = typer.Option(None, help="Write the log-log figure to this file."),
) -> None:
    """Train a few steps at several widths; exit 0 if every module is stable, 1 if not."""
    width_list = parse_int_list(widths, "widths")
    if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"plot: use a .png, .pdf or .svg file, got {plot.name!r}")
    from scalelaw.models.coord_check import coord_check

    result = coord_check(model, parametrization, width_list, steps=steps, optimizer=optimizer,
                         lr=lr, depth=depth, seeds=seeds, bound=bound)
    if plot is not None:
        from scalelaw.plots import plot_coord_check

        plot_coord_check(result.data, plot, title=f"{model}, {parametrization}, {optimizer}")
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
    table.add_column("verdict")
    for row in result.verdicts.itertuples():
        c = colour[row.verdict]
        table.add_row(row.module, f"{row.min_ratio:.3f}", f"{row.max_ratio:.3f}",
                      f"[{c}]{row.verdict}[/{c}]")
    console = make_console()
    console.print(table)
    n_bad = int((result.verdicts["verdict"] != "stable").sum())
    verdict = "[green]all modules stable[/green]" if n_bad == 0 else (
        f"[red]{n_bad} module(s) not stable[/red]")
    console.print(f"{verdict} (bound {result.bound:g})")


def register(app: typer.Typer) -> None:
    app.command("coord-check")(coord_check_command)
