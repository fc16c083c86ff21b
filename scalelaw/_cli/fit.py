"""``scalelaw fit``: fit a loss law to a table of runs (Hoffmann et al. 2022 App. D.2)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

LAWS_HELP = "batch_c, batch_d, chinchilla, data_constrained, farseer, kaplan, lr_c, lr_nd"
OBJECTIVE_HELP = (
    "Objective: NAME, then :TOKENs; NAME huber, squared, absolute or asymmetric; tokens log|raw "
    "(residual space), mean (instead of sum), numbers (huber's delta; asymmetric's under- "
    "then over-prediction weights), absolute|squared (asymmetric's base). Examples: "
    "huber:1e-3 (the default for loss laws), squared:raw, absolute:log, "
    "asymmetric:raw:10:mean (the chinchilla package's).")


def fit_cmd(
    table: Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL table, one row per run.")],
    law: Annotated[str, typer.Option(help=f"Law name: {LAWS_HELP}.")] = "chinchilla",
    n: Annotated[str, typer.Option("--n", help="Column with parameter counts.")] = "N",
    d: Annotated[str, typer.Option("--d", help="Column with training tokens.")] = "D",
    loss: Annotated[str, typer.Option("--loss", help="Column with the final loss (nats).")
                    ] = "loss",
    drop_top: Annotated[int, typer.Option("--drop-top", help="Drop the K highest-loss rows.")
                        ] = 0,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Bootstrap resamples (0: no intervals).")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    holdout_above: Annotated[float | None, typer.Option(
        "--holdout-above", help="Fit on N <= this; report the error on larger N.")] = None,
    objective: Annotated[str | None, typer.Option("--objective", help=OBJECTIVE_HELP)] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Column of row weights (finite, >= 0).")] = None,
    fixed: Annotated[list[str] | None, typer.Option(
        "--fix", help="Hold a parameter fixed, NAME=VALUE in natural units (E=1.69); "
                      "repeatable.")] = None,
    bounds: Annotated[list[str] | None, typer.Option(
        "--bound", help="Bound a parameter, NAME=LO:HI in natural units (alpha=0.1:0.6); "
                        "repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    save: Annotated[Path | None, typer.Option("--save", help="Write the fit as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Write a figure (png, pdf, svg).")] = None,
) -> None:
    """Fit a loss law L(N, D) to a table of runs.

    A robust fit from the law's full grid of starts, by default Hoffmann et al.'s sum of
    Huber(1e-3) log residuals (--objective changes it); prints the parameters and the
    objective.

    --law farseer uses Farseer's own differential piecewise procedure (Li et al. 2025,
    App. C, Alg. 2), not the generic Huber fit.
    """
    from scalelaw._cli._common import check_output_path, warn_line

    check_output_path(save, "save")
    check_output_path(plot, "plot", suffixes=(".png", ".pdf", ".svg"))
    fix, box = parse_fixed(fixed or []), parse_bounds(bounds or [])
    folder = _jax_cache_dir()
    if law == "farseer":
        from scalelaw.fit.farseer import fit_farseer

        if bootstrap or drop_top:
            raise ValueError("law, bootstrap, drop_top: not supported together: Farseer's "
                             "differential fit takes no bootstrap and drops no rows")
        given = [k for k, v in (("objective", objective), ("weights", weights),
                                ("fixed", fix), ("bounds", box)) if v]
        if given:
            raise ValueError(f"law, {', '.join(given)}: not supported together: Farseer's "
                             "differential fit has its own objective")
        result = fit_farseer(table, n=n, d=d, loss=loss, holdout_above=holdout_above)
    else:
        from scalelaw.fit.fit_law import fit_law
        from scalelaw.fit.identify import IdentifiabilityWarning
        from scalelaw.fit.programs import export_cache

        with export_cache(None if folder is None else folder / "scalelaw-exported"), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", IdentifiabilityWarning)
            result = fit_law(table, law, n=n, d=d, loss=loss, drop_top=drop_top,
                             bootstrap=bootstrap, seed=seed, holdout_above=holdout_above,
                             objective=objective, weights=weights, fixed=fix or None,
                             bounds=box or None)
        for w in caught:  # one line each on stderr; others as Python shows them
            if issubclass(w.category, IdentifiabilityWarning):
                warn_line(str(w.message))
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if plot is not None:
        from scalelaw.fit.plots import save_fit_figure

        save_fit_figure(result, table, plot, n=n, d=d, loss=loss)
    if save is not None:
        result.save(save)
    if as_json:
        from scalelaw._cli._common import print_json

        print_json(_summary(result))
    else:
        _print_table(result)


def _split(text: str, field: str, form: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"{field}: expected {form}, got {text!r}")
    return name.strip(), value.strip()


def _float(text: str, field: str, given: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a number in {given!r}") from None


def parse_fixed(items: list[str]) -> dict[str, float]:
    """``["E=1.69"]`` -> ``{"E": 1.69}`` (``--fix``); a bad item raises naming ``fixed``.

    >>> parse_fixed(["E=1.69", "beta=0.3"])
    {'E': 1.69, 'beta': 0.3}
    """
    out: dict[str, float] = {}
    for item in items:
        name, value = _split(item, "fixed", "NAME=VALUE such as E=1.69")
        if name in out:
            raise ValueError(f"fixed: {name} given twice")
        out[name] = _float(value, "fixed", item)
    return out


def parse_bounds(items: list[str]) -> dict[str, tuple[float, float]]:
    """``["alpha=0.1:0.6"]`` -> ``{"alpha": (0.1, 0.6)}`` (``--bound``), naming ``bounds``.

    >>> parse_bounds(["alpha=0.1:0.6"])
    {'alpha': (0.1, 0.6)}
    """
    out: dict[str, tuple[float, float]] = {}
    form = "NAME=LO:HI such as alpha=0.1:0.6"
    for item in items:
        name, value = _split(item, "bounds", form)
        lo, sep, hi = value.partition(":")
        if not sep:
            raise ValueError(f"bounds: expected {form}, got {item!r}")
        if name in out:
            raise ValueError(f"bounds: {name} given twice")
        out[name] = (_float(lo, "bounds", item), _float(hi, "bounds", item))
    return out


def _jax_cache_dir() -> Path | None:
    """JAX's persistent compilation cache for every program (the fit's take 0.5-4 s each
    to compile); set before JAX is imported. Inside it, the CLI keeps the fit programs
    exported, so that a later run also skips tracing them (:mod:`scalelaw.fit.programs`)."""
    from scalelaw.cache import enable_compilation_cache

    return enable_compilation_cache(min_compile_secs=0.0)


def _summary(result: Any) -> dict[str, Any]:
    out = result.to_dict()
    out.pop("samples", None)
    if result.samples:
        out["stderr"] = {k: result.stderr(k) for k in result.samples}
        out["interval95"] = {k: list(result.interval(k)) for k in result.samples}
    return out


def _print_table(result: Any) -> None:
    from rich.table import Table

    from scalelaw._cli._common import console as make_console

    boot = bool(result.samples)
    objective = "n/a" if result.objective is None else f"{result.objective:.6e}"
    t = Table(title=f"{result.law}: {result.n_points} points, objective {objective}")
    t.add_column("parameter")
    t.add_column("value", justify="right")
    if boot:
        t.add_column("std. err.", justify="right")
        t.add_column("95% interval", justify="right")
    values = {**result.params, **result.metadata.get("derived", {})}
    for k, v in values.items():
        row = [k, f"{v:.6g}"]
        if boot and k in result.samples:
            lo, hi = result.interval(k)
            ends = ("unbounded" if math.isinf(v) else f"{v:.4g}" for v in (lo, hi))
            row += [f"{result.stderr(k):.3g}", "({}, {})".format(*ends)]
        t.add_row(*row)
    console = make_console()
    console.print(t)
    hold = result.metadata.get("holdout")
    if hold:
        console.print(f"held out (N > {hold['fit_N_max']:g}): {hold['n']} rows, mean relative "
                      f"error {hold['mean_rel_error']:.3%}, max {hold['max_rel_error']:.3%}")
    meta = result.metadata
    if "objective" in meta:
        line = f"objective: {meta['objective']}"
        if meta.get("fixed"):
            line += "; fixed: " + ", ".join(f"{k}={v:g}" for k, v in meta["fixed"].items())
        if meta.get("at_bound"):
            line += "; at a bound: " + ", ".join(meta["at_bound"])
        console.print(line)
    conv = ", ".join(f"{k}: {v}" for k, v in result.conventions.items())
    console.print(f"conventions: {conv}")
