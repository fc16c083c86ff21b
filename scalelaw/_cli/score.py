"""``scalelaw score-laws``: score hyperparameter laws on an LR x batch grid.

Maps its options onto :func:`scalelaw.fit.score.score_laws` and prints the Table 1-style
summary (or one JSON object with ``--json``); pandas and scipy load inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelaw._cli._common import print_json
from scalelaw._cli._grid_options import Batch, BatchUnit, CellKeys, Loss, SeqLen


def score_laws_cmd(
    grid: Annotated[Path, typer.Argument(help="Runs table (.csv, .parquet, .jsonl).")],
    laws: Annotated[str, typer.Option(
        "--laws", help="Comma-separated laws: steplaw, deepseek, kaplan, power, loco, "
        "loco-bowl, a saved fit (.json), NAME@COLUMN for N from COLUMN.")] =
        "steplaw,deepseek,kaplan,power,loco",
    n: Annotated[str, typer.Option("--n", help="Column with parameters N.")] = "N",
    d: Annotated[str, typer.Option("--d", help="Column with training tokens D.")] = "D",
    lr: Annotated[str, typer.Option("--lr", help="Column with the peak LR.")] = "lr",
    batch: Batch = "bs",
    batch_unit: BatchUnit = "sequences",
    seq_len: SeqLen = 2048,
    loss: Loss = None,
    cell_keys: CellKeys = None,
    flops_per_token: Annotated[str | None, typer.Option(
        "--flops-per-token", help="Column with non-embedding FLOPs per token M (DeepSeek's "
        "C = M D; default M = 6N).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save the scores figure.")] = None,
) -> None:
    """Score published and your own hyperparameter laws on a grid (Step Law Table 1)."""
    import warnings

    from scalelaw._cli._common import check_output_path, parse_name_list, print_rows, warn_line
    from scalelaw.fit.score import score_laws

    check_output_path(plot, "plot", suffixes=(".png", ".pdf", ".svg"))
    names = parse_name_list(laws, "laws")
    keys = parse_name_list(cell_keys, "cell_keys") if cell_keys is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the notes are printed below
        scores = score_laws(grid, names, n=n, d=d, lr=lr, batch=batch, loss=loss,
                            batch_unit=batch_unit, seq_len=seq_len, cell_keys=keys,
                            flops_per_token=flops_per_token)
    for note in scores.notes:
        warn_line(note)
    if plot is not None:
        scores.plot(plot)
    if as_json:
        print_json(scores.to_dict() | {"plot": str(plot) if plot else None})
        return
    s = scores.summary()
    rows = [(str(law), f"mean {r['mean_bowl_vs_best']:.2f}, median {r['median_bowl_vs_best']:.2f}, "
                  f"worst {r['worst_bowl_vs_best']:.2f} (bowl) | mean "
                  f"{r['mean_nearest_vs_best']:.2f}, worst {r['worst_nearest_vs_best']:.2f} "
                  f"(nearest run); inside grid {r['inside']}/{r['cells']}; worst cell "
                  f"{r['worst_cell']}") for law, r in s.iterrows()]
    rows.append(("loss column", repr(scores.loss_column)))
    rows.extend((f"{law} is", text) for law, text in scores.laws.items())
    print_rows(f"loss excess over each cell's best run, per mille ({len(scores.cells)} "
               f"cells by {', '.join(scores.cell_keys)})", rows)
