"""``scalelaw fit-isoflop``: compute-optimal N*(C) from iso-FLOP runs (Chinchilla Approach 2).

Imports only numpy, pandas and scipy (no JAX), through :func:`scalelaw.fit.isoflop.isoflop_fit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from scalelaw._cli._common import print_json


def fit_isoflop_cmd(
    table: Annotated[Path, typer.Argument(
        help="Runs (.csv, .parquet, .jsonl): one row per run; with --method given, one "
             "row per budget.")],
    n: Annotated[str, typer.Option("--n", help="Column with parameter counts.")] = "N",
    c: Annotated[str, typer.Option("--c", help="Column with the compute budget (FLOPs).")
                 ] = "C",
    loss: Annotated[str, typer.Option("--loss", help="Column with the final loss.")] = "loss",
    method: Annotated[str, typer.Option(
        "--method", help="Per-budget optimum: parabola (all runs), window (around the best "
                         "run), akima (interpolant, bootstrap median) or given.")] = "parabola",
    window: Annotated[int, typer.Option(
        "--window", help="window: model sizes nearest the best run (>= 3).")] = 5,
    band: Annotated[float | None, typer.Option(
        "--band", help="window: the sizes within this relative loss of the best instead.")
                    ] = None,
    noise: Annotated[float | None, typer.Option(
        "--noise", help="Seed noise (std of log loss) for the window/akima bootstrap; "
                        "default: estimated from the table.")] = None,
    n_opt: Annotated[str, typer.Option("--n-opt", help="given: column with N*.")] = "N_opt",
    se: Annotated[str | None, typer.Option(
        "--se", help="given: column with the log standard error of N* "
                     "(default log_N_opt_se if present).")] = None,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Resamples per budget (0: no errors, unweighted frontier).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    save: Annotated[Path | None, typer.Option("--save", help="Write the fit as JSON.")] = None,
) -> None:
    """Fit N*(C) = k C^a to per-budget optima; flagged budgets are listed and left out."""
    from scalelaw._cli._common import check_output_path
    from scalelaw.fit.isoflop import isoflop_fit

    check_output_path(save, "save")
    result = isoflop_fit(table, n=n, c=c, loss=loss, method=method, window=window, band=band,
                         noise=noise, n_opt=n_opt, se=se, bootstrap=bootstrap, seed=seed)
    if save is not None:
        result.save(save)
    if as_json:
        out = result.to_dict()
        out.pop("samples", None)
        if result.samples:
            out["stderr"] = {k: result.stderr(k) for k in result.samples}
        print_json(out)
        return
    _print(result)


def _print(result: Any) -> None:
    from rich.table import Table

    from scalelaw._cli._common import console as make_console

    console = make_console()
    p, meta = result.params, result.metadata
    head = f"N* = {p['k']:.4g} C^{p['a']:.4f}, D* = {p['k_D']:.4g} C^{p['b']:.4f}"
    if result.samples:
        head += f"  (a: std. err. {result.stderr('a'):.3g})"
    console.print(f"isoflop ({meta['method']}): {head}; {meta['frontier']}")
    t = Table(title=f"{meta['used_budgets']} of {len(meta['budgets']['C'])} budgets used")
    for col in ("C", "N range", "N*", "se log N*", "used"):
        t.add_column(col, justify="right")
    b = meta["budgets"]
    for j, C in enumerate(b["C"]):
        rng = f"{b['N_min'][j]:.3g}-{b['N_max'][j]:.3g}" if b["N_min"][j] == b["N_min"][j] \
            else "-"
        t.add_row(f"{C:.3g}", rng, f"{b['N_opt'][j]:.4g}", f"{b['log_N_opt_se'][j]:.3g}",
                  "yes" if b["used"][j] else "no")
    console.print(t)
    for f in meta["flagged"]:
        console.print(f"flagged C={f['C']:.3g}: {f['reason']}")
