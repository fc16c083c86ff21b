"""From a width x LR sweep to hyperparameters at a target width (``scalelaw sweep recommend``).

:func:`recommend_from_sweep` fits each width's loss-optimal LR and its drift with width
(:func:`scalelaw.fit.transfer.fit_lr_transfer`) on a sweep directory's results, then asks
:func:`scalelaw.recommend` for the run at ``width`` and ``tokens``: the LR carried over
from the proxies (with its prediction interval), the batch size and schedule from a
published law (``source``), and, because the sweep's parametrization is known, the
per-role LRs and weight decays at that width. N defaults to the sweep's model at the
target width (non-embedding parameters, the Step Law convention).

Reads tables and JSON only: no JAX.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from scalelaw._fitted_laws import check_positive
from scalelaw.errors import ConfigError
from scalelaw.fit.result import FitResult
from scalelaw.recommendation import Recommendation

__all__ = ["SweepRecommendation", "recommend_from_sweep"]

_TRANSFER_AXES = {"model.width", "optimizer.lr", "train.seed", "parametrization.name"}


@dataclass(frozen=True)
class SweepRecommendation:
    """The LR-transfer fit of a sweep and the recommendation it gives at ``width``.

    Attributes
    ----------
    fit : FitResult
        ``kind="transfer"``; ``fit.metadata["optima"]`` holds the per-width optima.
    recommendation : Recommendation
    n_params : float
        The N the recommendation is for.
    width : int
    """

    fit: FitResult
    recommendation: Recommendation
    n_params: float
    width: int

    def to_dict(self) -> dict[str, Any]:
        """``{"transfer": fit, "recommendation": ...}`` as plain JSON-ready data."""
        return {"transfer": self.fit.to_dict(), "recommendation": self.recommendation.to_dict()}

    def optima_rows(self) -> list[dict[str, Any]]:
        """One row per width: best grid LR, the parabola's vertex, its loss, a note."""
        opt = self.fit.metadata["optima"]
        rows = []
        for i, w in enumerate(opt["width"]):
            note = ""
            if opt["edge"][i]:
                note = "best LR on the grid's edge" + (
                    "" if opt["used"][i] else "; left out of the fit")
            rows.append({"width": w, "best grid lr": opt["lr_grid_best"][i],
                         "lr* (vertex)": opt["lr_opt"][i], "loss at lr*": opt["loss_opt"][i],
                         "note": note})
        return rows

    def _repr_html_(self) -> str:
        import pandas as pd

        optima = pd.DataFrame(self.optima_rows()).to_html(index=False)
        rec = pd.DataFrame(self.recommendation.rows(), columns=["quantity", "value"])
        return (f"<b>loss-optimal LR per width</b>{optima}<b>recommendation at width "
                f"{self.width}</b>{rec.to_html(index=False)}")


def _records(store: Any, parametrization: str | None) -> tuple[list[dict], str | None]:
    """The chosen parametrization's trial records (the choice rules of the fit itself)."""
    import pandas as pd

    from scalelaw.fit.transfer import select_parametrization

    names = pd.DataFrame({"parametrization": [r["parametrization"] for r in store.records]})
    _, name = select_parametrization(names, parametrization)
    return [r for r in store.records if r["parametrization"] == name], name


def _check_axes(records: list[dict], sweep_dir: Any) -> None:
    """Refuse sweeps that vary anything but width, LR and seed (it would be averaged)."""
    other = sorted({k for r in records for k in r.get("swept", {})} - _TRANSFER_AXES)
    if other:
        raise ConfigError(f"{sweep_dir}: the sweep also varies {', '.join(other)}; this needs a "
                          "width x LR (x seed) sweep (fit a subset with "
                          "scalelaw.fit_lr_transfer)")


def _target_n(records: list[dict], width: int) -> float:
    """Non-embedding N of the sweep's transformer at ``width``."""
    from scalelaw.errors import FieldError
    from scalelaw.models.config import TransformerConfig, param_count

    model = dict(records[0]["config"]["model"])
    if model.get("family", "transformer") != "transformer":
        raise ConfigError("n_params: required for a sweep of a non-transformer model")
    try:
        return float(param_count(TransformerConfig(**{**model, "width": width})))
    except FieldError as err:
        raise ConfigError(f"width: {err.problem}") from None


def _tuned_at(config: dict) -> dict[str, Any]:
    """The sweep's fixed training settings, which the fitted LR belongs to."""
    train = config["train"]
    return {"batch_tokens": train["batch_size"] * config["model"].get("context", 1),
            "tokens": train["tokens"], "schedule": config["schedule"]["name"],
            "weight_decay": config["optimizer"]["weight_decay"]}


def recommend_from_sweep(
    sweep_dir: str | os.PathLike[str],
    *,
    width: int,
    tokens: float,
    n_params: float | None = None,
    parametrization: str | None = None,
    seq_len: int | None = None,
    source: str = "steplaw",
    drift: str = "auto",
) -> SweepRecommendation:
    """Hyperparameters at ``width`` from a sweep directory's width x LR results.

    Parameters
    ----------
    sweep_dir : path
        A sweep directory (``scalelaw sweep run --out``) whose trials vary width and LR
        (and seed) only.
    width : int
        Target model width.
    tokens : float
        Training tokens D of the planned run.
    n_params : float, optional
        N of the planned run (default: the sweep's model at ``width``, non-embedding).
    parametrization : str, optional
        Which of the sweep's parametrizations (needed when it holds several).
    seq_len : int, optional
        Tokens per sequence (default: the sweep's context).
    source : {"steplaw", "deepseek", "power"}
        Published law for the batch size and schedule.
    drift : {"auto", "fit", "none"}
        ``auto``: no drift for muP/CompleteP, a fitted drift otherwise.

    Raises
    ------
    ConfigError
        Naming the argument (``width: ...``) or the sweep directory.
    """
    from scalelaw.fit.transfer import fit_lr_transfer
    from scalelaw.mup.rules import Parametrization
    from scalelaw.recommend import recommend
    from scalelaw.sweep.results import results_table, trial_summary
    from scalelaw.sweep.store import SweepStore

    if drift not in ("auto", "fit", "none"):
        raise ConfigError(f"drift: must be auto, fit or none, got {drift!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
        raise ConfigError(f"width: must be a positive integer, got {width!r}")
    check_positive("tokens", tokens)
    store = SweepStore.open(sweep_dir)
    records, name = _records(store, parametrization)
    _check_axes(records, sweep_dir)
    config = records[0]["config"]
    n = check_positive("n_params", n_params) if n_params is not None else _target_n(records, width)
    seq_len = int(config["model"].get("context") or 2048) if seq_len is None else seq_len
    table = results_table(sweep_dir)
    if table.empty:
        raise ConfigError(f"{sweep_dir}: no logged losses yet (run the sweep first)")
    try:
        fit = fit_lr_transfer(trial_summary(table), parametrization=name, drift=drift)
    except ConfigError as err:
        raise ConfigError(f"{sweep_dir}: {err}") from None
    fit.metadata.update({"sweep": store.name, "sweep_dir": str(sweep_dir),
                         "parametrization_config": config["parametrization"],
                         "tuned_at": _tuned_at(config)})
    rec = recommend(n, tokens, laws=fit, width=width,
                    parametrization=Parametrization(**config["parametrization"]),
                    seq_len=seq_len, source=source)
    return SweepRecommendation(fit, rec, n, width)
