"""``scalelaw sweep recommend``: from a width x LR sweep to hyperparameters at a target width.

Fits the per-width loss-optimal LR and its drift with width
(:func:`scalelaw.fit.transfer.fit_lr_transfer`), then asks :func:`scalelaw.recommend` for
the run at ``--width`` and ``--tokens``: the LR from the sweep (with its prediction
interval), the batch size and schedule from a published law (``--source``), and, because
the sweep's parametrization is known, the per-role LRs and weight decays at that width.
N defaults to the sweep's model at the target width (non-embedding parameters, the Step
Law convention).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["sweep_recommendation"]


def _records(store: Any, parametrization: str | None) -> tuple[list[dict], str]:
    """The chosen parametrization's trial records (the choice rules of the fit itself)."""
    import pandas as pd

    from scalelaw._cli._common import as_flags
    from scalelaw.errors import ConfigError
    from scalelaw.fit.transfer import _select

    names = pd.DataFrame({"parametrization": [r["parametrization"] for r in store.records]})
    try:
        _, name = _select(names, parametrization)
    except ConfigError as err:
        raise ValueError(as_flags(str(err))) from None
    return [r for r in store.records if r["parametrization"] == name], name


_TRANSFER_AXES = {"model.width", "optimizer.lr", "train.seed", "parametrization.name"}


def _check_axes(records: list[dict]) -> None:
    """Refuse sweeps that vary anything but width, LR and seed (it would be averaged)."""
    other = sorted({k for r in records for k in r.get("swept", {})} - _TRANSFER_AXES)
    if other:
        raise ValueError(f"{', '.join(other)}: the sweep also varies this; `sweep recommend` "
                         "needs a width x LR (x seed) sweep (fit a subset with "
                         "scalelaw.fit_lr_transfer)")


def _target_model(records: list[dict], width: int) -> Any:
    """The sweep's transformer config at ``width``."""
    from scalelaw.models.config import TransformerConfig

    model = dict(records[0]["config"]["model"])
    if model.pop("family", "transformer") != "transformer":
        raise ValueError("--params: required for a sweep of a non-transformer model")
    try:
        return TransformerConfig(**{**model, "width": width})
    except ValueError as err:
        raise ValueError(f"--width: {err}") from None


def _tuned_at(config: dict) -> dict[str, Any]:
    """The sweep's fixed training settings, which the fitted LR belongs to."""
    train = config["train"]
    return {"batch_tokens": train["batch_size"] * config["model"].get("context", 1),
            "tokens": train["tokens"], "schedule": config["schedule"]["name"],
            "weight_decay": config["optimizer"]["weight_decay"]}


def sweep_recommendation(sweep_dir: Path, *, width: int, tokens: float,
                         params: float | None = None, parametrization: str | None = None,
                         seq_len: int | None = None, source: str = "steplaw",
                         drift: str = "auto") -> tuple[Any, Any, float]:
    """(transfer fit, Recommendation, N) for ``sweep_dir``'s results at ``width``."""
    from scalelaw._cli._common import as_flags
    from scalelaw.errors import ConfigError
    from scalelaw.fit.transfer import fit_lr_transfer
    from scalelaw.models.config import param_count
    from scalelaw.mup.rules import Parametrization
    from scalelaw.recommend import recommend
    from scalelaw.sweep.results import results_table, trial_summary
    from scalelaw.sweep.store import SweepStore

    if drift not in ("auto", "fit", "none"):
        raise ValueError(f"--drift: must be auto, fit or none, got {drift!r}")
    if width <= 0:
        raise ValueError(f"--width: must be a positive integer, got {width}")
    if not (tokens > 0 and math.isfinite(tokens)):
        raise ValueError(f"--tokens: must be a positive finite number, got {tokens!r}")
    if params is not None and not (params > 0 and math.isfinite(params)):
        raise ValueError(f"--params: must be a positive finite number, got {params!r}")
    store = SweepStore.open(sweep_dir)
    records, name = _records(store, parametrization)
    _check_axes(records)
    config = records[0]["config"]
    param = Parametrization(**config["parametrization"])
    n = float(params) if params is not None else float(param_count(_target_model(records,
                                                                                 width)))
    if seq_len is None:
        seq_len = int(config["model"].get("context") or 2048)
    table = results_table(sweep_dir)
    if table.empty:
        raise ValueError(f"{sweep_dir}: no logged losses yet (run the sweep first)")
    try:
        fit = fit_lr_transfer(trial_summary(table), parametrization=name, drift=drift)
    except ConfigError as err:
        raise ValueError(f"{sweep_dir}: {err}") from None
    fit.metadata.update({"sweep": store.name, "sweep_dir": str(sweep_dir),
                         "parametrization_config": config["parametrization"],
                         "tuned_at": _tuned_at(config)})
    try:
        rec = recommend(n, tokens, laws=fit, width=width, parametrization=param,
                        seq_len=seq_len, source=source)
    except ValueError as err:
        raise ValueError(as_flags(str(err))) from None
    return fit, rec, n


def _note(optima: dict, i: int) -> str:
    if not optima["edge"][i]:
        return ""
    return "best LR on the grid's edge" + ("" if optima["used"][i] else "; left out of the fit")


def print_recommendation(fit: Any, rec: Any, width: int) -> None:
    """The per-width optima, the drift, then the recommendation table."""
    from rich.table import Table

    from scalelaw._cli._common import console as make_console
    from scalelaw._cli.hparams import _table

    console = make_console()
    opt = fit.metadata["optima"]
    name = fit.metadata.get("parametrization") or ""
    table = Table(title=f"loss-optimal learning rate per width ({name})")
    for col in ("width", "best grid lr", "lr* (vertex)", "loss at lr*", "note"):
        table.add_column(col, justify="right" if col != "note" else "left")
    for i, w in enumerate(opt["width"]):
        table.add_row(f"{w:g}", f"{opt['lr_grid_best'][i]:.4g}", f"{opt['lr_opt'][i]:.4g}",
                      f"{opt['loss_opt'][i]:.4f}",
                      _note(opt, i))
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
    _table(f"recommendation at width {width} (N = {rec.n_params:.3g}, D = {rec.n_tokens:.3g})",
           rec.rows())
