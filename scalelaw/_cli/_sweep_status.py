"""How ``scalelaw sweep status`` prints :func:`scalelaw.sweep.status.sweep_status`."""

from __future__ import annotations

from typing import Any

from scalelaw.sweep.store import STATES

__all__ = ["print_status"]


def print_status(data: dict[str, Any]) -> None:
    """Render :func:`scalelaw.sweep.status.sweep_status` with rich."""
    from rich.table import Table

    from scalelaw._cli._common import console as make_console

    console = make_console()
    shown = [s for s in STATES if data["totals"][s] or s in ("done", "pending")]
    table = Table(title=f"sweep {data['name']} ({data['dir']}): {data['trials']} trials")
    for name in ("group", "parametrization", "width", "depth", "T", "B", "steps", *shown):
        table.add_column(name, justify="left" if name in ("group", "parametrization") else "right")
    for g in data["groups"]:
        table.add_row(g["group_id"], g["parametrization"], str(g["width"]), str(g["depth"]),
                      str(g["context"] or "-"), str(g["batch_size"]), str(g["steps"]),
                      *[_count(g[s], s) for s in shown])
    table.add_section()
    table.add_row("total", "", "", "", "", "", "", *[_count(data["totals"][s], s) for s in shown])
    console.print(table)
    lock = data["lock"]
    if lock:
        console.print(f"a run is active: process {lock['pid']} on {lock['host']} since "
                      f"{lock['started']}")
    elif data["totals"]["interrupted"] or data["totals"]["pending"]:
        console.print(f"not finished; resume with `scalelaw sweep run --out {data['dir']}`")
    grid = data["best_lr"]
    if grid is None:
        console.print("(one learning rate: no best-LR view)")
        return
    _print_grid(console, grid)


def _count(n: int, state: str) -> str:
    colour = {"diverged": "yellow", "failed": "red", "running": "cyan",
              "interrupted": "magenta"}.get(state)
    return f"[{colour}]{n}[/{colour}]" if colour and n else str(n)


def _print_grid(console: Any, grid: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="final eval loss by learning rate (best in bold green; muP: the best "
                        "LR should not move with width)")
    for key in grid["keys"]:
        table.add_column(key)
    for lr in grid["lrs"]:
        table.add_column(f"{lr:.3g}", justify="right")
    table.add_column("best lr", justify="right")
    for row in grid["rows"]:
        cells = []
        for lr, loss in zip(grid["lrs"], row["loss"], strict=True):
            if loss is None:
                cells.append("·")
            elif loss == "diverged":
                cells.append("[yellow]div[/yellow]")
            else:
                text = f"{loss:.4f}"
                cells.append(f"[bold green]{text}[/bold green]" if lr == row["best_lr"] else text)
        best = "-" if row["best_lr"] is None else f"{row['best_lr']:.3g}"
        table.add_row(*[str(v) for v in row["key"].values()], *cells, best)
    console.print(table)
