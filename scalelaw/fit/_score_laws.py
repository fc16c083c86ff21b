"""The laws :func:`scalelaw.fit.score.score_laws` scores, turned into one predictor each.

A law may be given as a registry name (``"steplaw"``, ``"deepseek"``, ``"kaplan"``,
``"power"``: :mod:`scalelaw.published`), ``"name@column"`` (the registry law evaluated with
N read from ``column``, e.g. active parameters), ``"loco"`` / ``"loco-band"`` /
``"loco-bowl"`` (the user's own Step Law-form law refitted with every cell left out in
turn), a ``kind="hparams"`` :class:`~scalelaw.fit.result.FitResult` or the path of a saved
one, a pair of callables ``(lr(N, D), batch_tokens(N, D))``, a :class:`Refit` (any fitter
rerun per held-out cell) or a dict ``{"law": <one of those>, "n": column}``.

Examples
--------
>>> spec = parse_spec("steplaw@Na")
>>> spec.law, spec.n
('steplaw', 'Na')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalelaw import published
from scalelaw.errors import ConfigError
from scalelaw.fit.held_out import fit_on_other_cells
from scalelaw.fit.powerlaw_form import band_mask, power_law_predict, predict_hparams
from scalelaw.fit.result import FitResult, load_fit

__all__ = ["LOCO", "Refit", "Spec", "parse_spec", "resolve"]

LOCO = ("loco", "loco-band", "loco-bowl")


@dataclass(frozen=True)
class Refit:
    """A law refitted on every cell but the one it is scored on (leave-one-cell-out).

    Attributes
    ----------
    fit : callable
        ``fit(train_runs) -> law``: ``train_runs`` has the canonical columns ``cell, N, D,
        lr, batch_tokens, loss`` (N from the law's ``n`` column) of the other cells; the
        returned law is a ``kind="hparams"`` FitResult or a pair of callables.
    description : str
        How the law is fitted (shown in the scores).
    """

    fit: Callable[[pd.DataFrame], Any]
    description: str = "user fitter, refitted with the scored cell left out"


@dataclass(frozen=True)
class Spec:
    """One law to score: ``law`` as given and the column its N is read from (None: the
    table's N column)."""

    law: Any
    n: str | None = None


def parse_spec(value: Any) -> Spec:
    """A :class:`Spec` from a law as the user gives it (see the module docstring)."""
    if isinstance(value, Spec):
        return value
    if isinstance(value, dict):
        if "law" not in value or set(value) - {"law", "n"}:
            raise ConfigError(f"laws: a dict law needs the keys 'law' (and optionally 'n'), "
                              f"got {sorted(value)}")
        return Spec(value["law"], value.get("n"))
    if isinstance(value, str) and "@" in value and not os.path.exists(value):
        law, _, col = value.partition("@")
        return Spec(law, col or None)
    return Spec(value)


def _published(name: str, seq_len: int, fpt: str | None
               ) -> tuple[Callable[[pd.Series, pd.DataFrame], tuple[float, float]], str]:
    try:
        law = published.get_law(name)
    except ValueError as err:
        raise ConfigError(str(err).replace("source: ", "laws: ", 1)) from None
    uses_m = fpt is not None and law.predict_compute is not None

    def predict(cell: pd.Series, runs: pd.DataFrame) -> tuple[float, float]:
        m = float(cell[f"x:{fpt}"]) if uses_m else None
        return law.evaluate(float(cell["N_law"]), float(cell["D"]), seq_len, flops_per_token=m)

    notes = [n for n in law.notes if not (uses_m and "M = 6N" in n)]
    if uses_m:
        notes.append(f"C = M*D with M from column {fpt!r} (non-embedding FLOPs per token)")
    text = f"{law.source}: {law.formula} ({law.units}); N: {law.n_convention}"
    return predict, "; ".join([text, *notes])


def _from_law(law: Any) -> Callable[[float, float], tuple[float, float]]:
    """``(N, D) -> (lr, batch_tokens)`` of a fitted law or a pair of callables."""
    if isinstance(law, str | os.PathLike):
        try:
            law = load_fit(law)
        except FileNotFoundError:
            raise ConfigError(f"laws: {law}: no such file or registry law (registry: "
                              f"{', '.join(published.HPARAM_LAWS)}, or {', '.join(LOCO)})"
                              ) from None
        except (OSError, ValueError) as err:
            raise ConfigError(f"laws: {err}") from None
    if isinstance(law, FitResult):
        fit = law

        def from_fit(n: float, d: float) -> tuple[float, float]:
            lr, bs = predict_hparams(fit, n, d)
            return float(lr), float(bs)
        return from_fit
    if isinstance(law, tuple | list) and len(law) == 2 and all(map(callable, law)):
        lr_fn, bs_fn = law
        return lambda n, d: (float(lr_fn(n, d)), float(bs_fn(n, d)))
    raise ConfigError("laws: expected a registry name, 'loco', a FitResult or its saved path, "
                      "a pair of callables (lr(N, D), batch_tokens(N, D)) or a Refit; got "
                      f"{type(law).__name__}")


def _loco(method: str, threshold: float
          ) -> Callable[[pd.Series, pd.DataFrame, pd.DataFrame], tuple[float, float]]:
    def predict(cell: pd.Series, runs: pd.DataFrame, cells: pd.DataFrame) -> tuple[float, float]:
        held = runs["cell"] == cell["cell"]
        train = runs[~held].assign(N=runs.loc[~held, "N_law"])
        band = train[band_mask(train, threshold)]
        others = cells[cells["cell"] != cell["cell"]].dropna(subset=["bowl_lr"])
        optima = pd.DataFrame({"N": others["N_law"], "D": others["D"], "lr": others["bowl_lr"],
                               "batch_tokens": others["bowl_batch"]})
        coefs = fit_on_other_cells(band, optima, method)
        lr, bs = power_law_predict(coefs, cell["N_law"], cell["D"])
        return float(lr), float(bs)
    return predict


def resolve(spec: Spec, *, seq_len: int, flops_per_token: str | None, threshold: float
            ) -> tuple[Callable[[pd.Series, pd.DataFrame, pd.DataFrame], tuple[float, float]],
                       str]:
    """``(predict(cell, runs, cells) -> (lr, batch_tokens), description)`` for ``spec``.

    ``cell`` is one row of the cell table (``N_law`` the law's N there), ``runs`` and
    ``cells`` the whole grid (a held-out law must not look at ``cell``'s runs).
    """
    law = spec.law
    if isinstance(law, str) and law in published.HPARAM_LAWS | published.LEFT_OUT:
        fn, text = _published(law, seq_len, flops_per_token)
        return (lambda cell, runs, cells: fn(cell, runs)), text
    if isinstance(law, str) and law in LOCO:
        method = "bowl" if law == "loco-bowl" else "band"
        what = (f"Step Law band (|L/L*-1| < {threshold:g}) pooled runs" if method == "band"
                else "cell bowl minima")
        return _loco(method, threshold), (f"your grid's own Step Law-form law (point OLS on "
                                          f"the {what}), refitted with the scored cell left "
                                          "out")
    if isinstance(law, Refit):
        refit = law

        def predict_refit(cell: pd.Series, runs: pd.DataFrame, cells: pd.DataFrame
                          ) -> tuple[float, float]:
            train = runs[runs["cell"] != cell["cell"]].assign(
                N=lambda f: f["N_law"])[["cell", "N", "D", "lr", "batch_tokens", "loss"]]
            return _from_law(refit.fit(train.reset_index(drop=True)))(
                float(cell["N_law"]), float(cell["D"]))
        return predict_refit, refit.description
    fn2 = _from_law(law)
    if isinstance(law, FitResult):
        text = (f"fitted law {law.law!r} ({law.metadata.get('estimate', 'as given')}, "
                f"{law.n_points} points; not held out: scored on cells it may have seen)")
    elif isinstance(law, str | os.PathLike):
        text = f"saved fit {os.fspath(law)} (not held out)"
    else:
        text = "user laws (lr(N, D), batch_tokens(N, D))"
    return (lambda cell, runs, cells: fn2(float(cell["N_law"]), float(cell["D"]))), text


def finite_or_nan(pair: tuple[float, float]) -> tuple[float, float]:
    """A prediction with non-positive or non-finite values replaced by NaN."""
    return tuple(float(v) if np.isfinite(v) and v > 0 else float("nan")  # type: ignore[return-value]
                 for v in pair)
