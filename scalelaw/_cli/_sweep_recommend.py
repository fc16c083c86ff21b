"""How ``scalelaw sweep recommend`` prints a :class:`scalelaw.SweepRecommendation`."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["print_recommendation"]


def print_recommendation(result: Any) -> None:
    """The per-width optima, the drift, then the recommendation table."""
    from rich.table import Table

    from scalelaw._cli._common import console as make_console
    from scalelaw._cli._common import print_rows

    fit, rec = result.fit, result.recommendation
    console = make_console()
    name = fit.metadata.get("parametrization") or ""
    table = Table(title=f"loss-optimal learning rate per width ({name})")
    for col in ("width", "best grid lr", "lr* (vertex)", "loss at lr*", "note"):
        table.add_column(col, justify="right" if col != "note" else "left")
    for row in result.optima_rows():
        table.add_row(f"{row['width']:g}", f"{row['best grid lr']:.4g}",
                      f"{row['lr* (vertex)']:.4g}", f"{row['loss at lr*']:.4f}", row["note"])
    console.print(table)
    skipped = fit.metadata.get("skipped_widths") or {}
    if skipped:
        console.print("left out (fewer than 3 finished LRs): "
                      + ", ".join(f"width {w} ({n})" for w, n in skipped.items()))
    fitted = fit.metadata["fitted"]
    s, se = fitted["width_exponent"], fitted["se"]
    spread = f" +- {se:.3f} (s.e.)" if se is not None and math.isfinite(se) else ""
    console.print(f"fitted drift lr*(width) ~ width^s: s = {s:+.3f}{spread} (muP predicts 0, "
                  "standard parametrization with Adam about -1)")
    default = f" (the {name} default)" if fit.metadata.get("drift_requested") == "auto" else ""
    if fit.metadata["drift"] == "none":
        console.print(f"prediction: no drift{default}, lr* = geometric mean of the optima = "
                      f"{math.exp(fit.params['log_lr_ref']):.4g}")
    else:
        console.print(f"prediction: the fitted drift, extrapolated{default}")
    holdout = fit.metadata.get("holdout") or {}
    if holdout.get("checked"):
        colour = "green" if holdout["passed"] else "red"
        console.print(f"[{colour}]{holdout['verdict']}[/{colour}]")
    elif holdout:
        console.print(f"no held-out check: {holdout['reason']}")
    print_rows(f"recommendation at width {result.width} (N = {rec.n_params:.3g}, "
               f"D = {rec.n_tokens:.3g})", rec.rows())
