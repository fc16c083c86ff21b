"""``scalelaw fit-hparams`` and ``scalelaw recommend``.

Heavy modules (pandas, scipy, matplotlib) are imported inside the commands; ``recommend``
needs only :mod:`scalelaw.recommend` (no JAX), so it starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from scalelaw._cli._common import print_json, print_rows
from scalelaw._cli._grid_options import Batch, BatchUnit, CellKeys, Loss, SeqLen


def fit_hparams_cmd(
    table: Annotated[Path, typer.Argument(help="Runs table (.csv, .parquet, .jsonl).")],
    n: Annotated[str, typer.Option("--n", help="Column with parameters N.")] = "N",
    d: Annotated[str, typer.Option("--d", help="Column with training tokens D.")] = "D",
    lr: Annotated[str, typer.Option("--lr", help="Column with the peak LR.")] = "lr",
    batch: Batch = "bs",
    batch_unit: BatchUnit = "sequences",
    seq_len: SeqLen = 2048,
    loss: Loss = None,
    cell_keys: CellKeys = None,
    method: Annotated[str, typer.Option("--method", help="band (Step Law) or bowl.")] = "band",
    threshold: Annotated[
        float, typer.Option("--threshold", help="Band: relative loss to the cell's best.")
    ] = 0.0025,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Bootstrap resamples (0: the point fit, no intervals).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    save: Annotated[Path | None, typer.Option("--save", help="Save the fit (JSON).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save LR x batch bowls.")] = None,
) -> None:
    """Fit lr*(N, D) and B*(D) laws to an LR x batch grid."""
    import warnings

    from scalelaw._cli._common import check_output_path, parse_name_list, warn_line
    from scalelaw.fit.hparams import fit_hparams, load_runs

    check_output_path(plot, "plot", suffixes=(".png", ".pdf", ".svg"))
    keys = parse_name_list(cell_keys, "cell_keys") if cell_keys is not None else None
    columns: dict[str, Any] = {"n": n, "d": d, "lr": lr, "batch": batch, "loss": loss,
               "batch_unit": batch_unit, "seq_len": seq_len, "cell_keys": keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said once, below, on stderr
        fit = fit_hparams(table, **columns, method=method, threshold=threshold,
                          bootstrap=bootstrap, seed=seed)
    if fit.metadata.get("loss_note"):
        warn_line(fit.metadata["loss_note"])
    if plot is not None:
        from scalelaw.fit.plots_hparams import plot_bowls

        columns["loss"] = fit.metadata["columns"]["loss"]
        plot_bowls(load_runs(table, **columns), fit, path=plot, threshold=threshold)
    if save is not None:
        fit.save(save)
    p = fit.params
    if as_json:
        print_json(fit.to_dict() | {"saved": str(save) if save else None})
        return
    rows = [
        ("lr*", f"{p['lr_prefactor']:.4g} N^{p['lr_coefN']:.4f} D^{p['lr_coefD']:.4f}"),
        ("B* (tokens)", f"{p['bs_prefactor']:.4g} D^{p['bs_coefD']:.4f}"),
        ("method", f"{method} ({fit.metadata['estimate']}); points {fit.n_points}, "
                   f"cells {fit.metadata['n_cells']}"),
        ("loss column", fit.metadata["loss_note"] if fit.metadata.get("loss_note")
         else repr(fit.metadata["columns"]["loss"])),
    ]
    undetermined = fit.metadata.get("not_determined", {})
    for name in ("lr_coefN", "lr_coefD", "bs_coefD"):
        text = ""
        if fit.samples:
            lo, hi = fit.interval(name)
            text = f"[{lo:.4f}, {hi:.4f}]"
        if name in undetermined:
            text = f"{text}  {undetermined[name]}".strip()
        if text:
            rows.append((f"{name} 95%", text))
    holdout = fit.metadata.get("holdout") or {}
    rows.append(("held-out check", holdout.get("verdict") or holdout.get("reason", "")))
    if save is not None:
        rows.append(("saved", str(save)))
    print_rows("optimal-hyperparameter laws", rows)


def recommend_cmd(
    params: Annotated[float | None, typer.Option("--params", help="Parameters N.")] = None,
    tokens: Annotated[float | None, typer.Option("--tokens", help="Training tokens D.")
                      ] = None,
    compute: Annotated[float | None, typer.Option(
        "--compute", help="A FLOP budget instead of --params/--tokens: N and D allocated "
                          "compute-optimally (C = 6ND) by a loss fit in --laws, else by "
                          "Epoch AI's published law.")] = None,
    laws: Annotated[list[Path] | None, typer.Option(
        "--laws", help="A saved fit: fit-hparams --save, sweep recommend --save, or a loss "
                       "fit (fit --save); repeat for a loss fit and a hyperparameter law."),
    ] = None,
    seq_len: SeqLen = 2048,
    source: Annotated[
        str, typer.Option("--source", help="Published law: steplaw, deepseek, kaplan, power.")
    ] = "steplaw",
    parametrization: Annotated[
        str | None, typer.Option("--parametrization", help="sp, mup or completep.")
    ] = None,
    width: Annotated[int | None, typer.Option("--width", help="Target width.")] = None,
    base_width: Annotated[
        int | None, typer.Option("--base-width", help="Base width of the parametrization.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Recommend LR, batch, weight decay and schedule for a run (--params and --tokens, or
    a --compute budget)."""
    from scalelaw.recommend import recommend

    given = None if not laws else laws[0] if len(laws) == 1 else list(laws)
    rec = recommend(params, tokens, compute=compute, laws=given, seq_len=seq_len,
                    source=source, parametrization=parametrization, width=width,
                    base_width=base_width)
    if as_json:
        print_json(rec.to_dict())
        return
    head = f"C = {compute:.3g} FLOPs: " if compute is not None else ""
    print_rows(f"recommendation for {head}N = {rec.n_params:.3g}, D = {rec.n_tokens:.3g}",
               rec.rows())
