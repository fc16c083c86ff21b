"""Which hyperparameter law should I trust? Score laws on an LR x batch grid (Step Law Table 1).

Step Law (Li et al. 2025, arXiv 2503.04715, Table 1) compares laws by the relative loss
excess of each law's predicted (lr, B) over the best run of an exhaustive grid at a held-out
(N, D) cell: (L(lr_hat, B_hat) − L_min) / L_min, in per mille. How they evaluate L at an
off-grid point is not stated, so :func:`score_laws` reports two stated evaluators, each
against two references:

- **nearest run**: the loss of the grid run nearest the prediction in (log2 lr, log2 B)
  (ties averaged; its distance is reported);
- **bowl**: the cell's fitted convex bowl (:func:`scalelaw.fit.bowl.fit_bowl`) at the
  prediction (beyond the grid that is an extrapolation of the quadratic, and flagged);
- against the cell's **best run** (Table 1's L_min) and, separately, the **bowl minimum**
  (which sits 0.01–0.16% above the best run on Step Law's dense grid: the bowl-minimum
  reference understates the Table 1 measure; the nearest run can beat the bowl minimum, so
  ``excess_nearest_vs_bowl`` can be negative).

Every prediction also says where it falls: inside the cell's (lr, B) range, or outside it
and by how many octaves (log2; decades = log2 / 3.32).

Examples
--------
A synthetic grid whose bowls sit on lr = 2 N^-0.7 D^0.3, B = 0.5 D^0.57 (tokens):

>>> import numpy as np, pandas as pd
>>> rows = []
>>> for N, D in [(1e8, 2e9), (1e8, 8e9), (4e8, 8e9), (4e8, 3.2e10)]:
...     lr0, b0 = 2.0 * N**-0.7 * D**0.3, 0.5 * D**0.57
...     for lr in lr0 * 2.0 ** np.arange(-3, 3.5, 0.5):
...         for b in b0 * 2.0 ** np.arange(-3, 3.5, 1.0):
...             u, v = np.log(lr / lr0), np.log(b / b0)
...             rows.append((N, D, lr, b, 3.0 + 0.01 * u**2 + 0.005 * v**2))
>>> grid = pd.DataFrame(rows, columns=["N", "D", "lr", "bs", "loss"])
>>> true = (lambda N, D: 2.0 * N**-0.7 * D**0.3, lambda N, D: 0.5 * D**0.57)
>>> scores = score_laws(grid, laws={"true": true, "steplaw": "steplaw"}, batch_unit="tokens")
>>> s = scores.summary()
>>> float(s.loc["true", "mean_bowl_vs_best"]) < 1e-6  # per mille
True
>>> bool(s.loc["steplaw", "mean_bowl_vs_best"] > s.loc["true", "mean_bowl_vs_best"])
True
>>> scores.to_frame().shape[0]  # one row per law and cell
8
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError
from scalelaw.fit._score_laws import Refit, finite_or_nan, parse_spec, resolve
from scalelaw.fit.bowl import DEFAULT_WINDOW, Bowl, fit_bowl
from scalelaw.fit.hparams import BATCH_UNITS, cell_codes
from scalelaw.fit.table import TableLike, read_table, resolve_loss_column, validated_columns

__all__ = ["DEFAULT_LAWS", "LawScores", "Refit", "score_laws"]

DEFAULT_LAWS = ("steplaw", "deepseek", "kaplan", "power", "loco")
"""Scored when ``laws`` is not given: every registry law and the grid's own law held out."""
METRICS = ("bowl_vs_best", "nearest_vs_best", "bowl_vs_bowl", "nearest_vs_bowl")
PAPER_TABLE1 = {"steplaw": 0.94, "porian": 3.71, "deepseek": 9.26, "microsoft": 9.25,
                "kaplan": 9.51}
"""Step Law's Table 1 (per mille, their held-out 1B / 100B cell; 'kaplan' is 'OpenAI')."""


@dataclass(frozen=True)
class LawScores:
    """The scores of several hyperparameter laws on one grid (:func:`score_laws`).

    Attributes
    ----------
    table : DataFrame
        One row per (law, cell): the predicted ``lr`` and ``batch_tokens``, where they fall
        (``inside``, ``lr_outside_log2``, ``batch_outside_log2``: 0 inside, else octaves
        beyond the cell's range, signed), the nearest run and the bowl at the prediction,
        and the relative excesses ``excess_{bowl,nearest}_vs_{best,bowl}`` (fractions).
    cells : DataFrame
        One row per cell: its keys, runs, best run, (lr, B) range and bowl.
    laws : dict
        Law label -> what it is (source, formula, conventions, notes).
    loss_column : str
        The loss column scored.
    notes : tuple of str
        Choices made (loss column, merged cells, failed bowls ...).
    """

    table: pd.DataFrame
    cells: pd.DataFrame
    laws: dict[str, str]
    loss_column: str
    cell_keys: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        """The per-(law, cell) table (a copy)."""
        return self.table.copy()

    def summary(self) -> pd.DataFrame:
        """Step Law Table 1 style, one row per law: mean, median and worst-cell excess in
        per mille for each evaluator and reference, the worst cell (bowl vs best run), and
        how many predictions fell inside their cell's grid."""
        rows = []
        for law, g in self.table.groupby("law", sort=False):
            row: dict[str, Any] = {"law": law, "cells": len(g), "inside": int(g["inside"].sum())}
            for m in METRICS:
                v = 1000 * g[f"excess_{m}"]
                row[f"mean_{m}"], row[f"median_{m}"] = v.mean(), v.median()
                row[f"worst_{m}"] = v.max()
            ok = g["excess_bowl_vs_best"].notna()
            worst = g.loc[ok, "excess_bowl_vs_best"].to_numpy()
            row["worst_cell"] = (str(g.loc[ok, "cell_label"].to_numpy()[int(np.argmax(worst))])
                                 if ok.any() else "")
            rows.append(row)
        return pd.DataFrame(rows).set_index("law")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the summary, the table, the cells, the laws and the notes."""
        return {"loss_column": self.loss_column, "cell_keys": list(self.cell_keys),
                "laws": dict(self.laws), "notes": list(self.notes),
                "summary_permille": self.summary().reset_index().to_dict(orient="records"),
                "table": self.table.to_dict(orient="records"),
                "cells": self.cells.to_dict(orient="records")}

    def plot(self, path: Any = None, *, metric: str = "bowl_vs_best") -> Any:
        """Per-law summary bars and per-cell excesses (:func:`scalelaw.fit.plots_score.
        plot_law_scores`)."""
        from scalelaw.fit.plots_score import plot_law_scores

        return plot_law_scores(self, path=path, metric=metric)

    def _short(self) -> pd.DataFrame:
        cols = {"mean_bowl_vs_best": "mean ‰ (bowl)", "median_bowl_vs_best": "median ‰ (bowl)",
                "worst_bowl_vs_best": "worst ‰ (bowl)", "mean_nearest_vs_best":
                "mean ‰ (nearest run)", "worst_nearest_vs_best": "worst ‰ (nearest run)",
                "inside": "inside grid", "cells": "cells", "worst_cell": "worst cell"}
        return self.summary()[list(cols)].rename(columns=cols)

    def __repr__(self) -> str:
        head = (f"LawScores: {self.cells.shape[0]} cells ({', '.join(self.cell_keys)}), loss "
                f"column {self.loss_column!r}; excess over each cell's best run, per mille")
        body = self._short().to_string(float_format=lambda x: f"{x:.2f}")
        return "\n".join([head, body, *(f"note: {n}" for n in self.notes)])

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{n}</li>" for n in self.notes)
        return (f"<p>{len(self.cells)} cells ({', '.join(self.cell_keys)}), loss column "
                f"<code>{self.loss_column}</code>; excess over each cell's best run, per "
                f"mille</p>" + self._short().to_html(float_format=lambda x: f"{x:.2f}")
                + (f"<ul>{notes}</ul>" if notes else ""))


def score_laws(
    runs: TableLike,
    laws: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    n: str = "N",
    d: str = "D",
    lr: str = "lr",
    batch: str = "bs",
    loss: str | None = None,
    batch_unit: str = "sequences",
    seq_len: int = 2048,
    cell_keys: Sequence[str] | None = None,
    flops_per_token: str | None = None,
    window: float = DEFAULT_WINDOW,
    threshold: float = 0.0025,
) -> LawScores:
    """Score hyperparameter laws on every cell of an LR x batch grid.

    Parameters
    ----------
    runs : DataFrame or path
        One row per run: N, D, peak LR, batch and final loss columns (names below); a
        diverged run may have a NaN or inf loss.
    laws : mapping label -> law, or sequence of laws
        Each law a registry name (``"steplaw"``, ``"deepseek"``, ``"kaplan"``, ``"power"``),
        ``"name@column"`` (N from ``column``, e.g. active parameters), ``"loco"`` (your
        grid's Step Law band law refitted with each cell left out; ``"loco-bowl"`` from bowl
        minima), a ``kind="hparams"`` FitResult or its saved path, a pair of callables
        ``(lr(N, D), batch_tokens(N, D))``, a :class:`Refit`, or ``{"law": ..., "n":
        column}``. Default: :data:`DEFAULT_LAWS`.
    n, d, lr, batch, loss : str
        Columns. ``loss`` defaults to ``"loss"``, said loudly (a warning and a note) when a
        smoothed-loss column exists.
    batch_unit, seq_len
        The batch column's unit (``"sequences"`` are multiplied by ``seq_len``).
    cell_keys : sequence of str, optional
        Columns that define a cell (default ``(n, d)``): e.g. ``("moe_name", "D")`` keeps two
        MoE models with the same total N apart. N (each law's column) and D must be constant
        within a cell.
    flops_per_token : str, optional
        Column with M, the non-embedding FLOPs per token, for laws of compute C = M·D
        (DeepSeek); without it they use M = 6N and the law's description says so.
    window, threshold : float
        The bowl fitting window and the Step Law band used by ``"loco"``.

    Returns
    -------
    LawScores
        ``.to_frame()``, ``.summary()`` (per mille), ``.plot()``, ``.to_dict()``.

    Raises
    ------
    ConfigError
        A missing or non-numeric column, a cell whose N or D is not constant, an unknown
        law; the message names the argument.
    """
    specs = _labelled(laws)
    cols = _needed_columns(specs, n, flops_per_token)
    table, cells, loss_col, notes = _load(runs, n=n, d=d, lr=lr, batch=batch, loss=loss,
                                          batch_unit=batch_unit, seq_len=seq_len,
                                          cell_keys=cell_keys, extra=cols, window=window)
    keys = tuple(cell_keys) if cell_keys is not None else (n, d)
    rows, described = [], {}
    for label, spec in specs.items():
        predict, text = resolve(spec, seq_len=seq_len, flops_per_token=flops_per_token,
                                threshold=threshold)
        n_col = spec.n or n
        described[label] = text + (f"; N from column {n_col!r}" if spec.n else "")
        runs_l = table.assign(N_law=table[f"x:{n_col}"])
        cells_l = cells.assign(N_law=cells[f"x:{n_col}"])
        for _, cell in cells_l.iterrows():
            try:
                pred = finite_or_nan(predict(cell, runs_l, cells_l))
                why = "" if all(map(math.isfinite, pred)) else "no finite positive prediction"
            except (ConfigError, ValueError, ZeroDivisionError, OverflowError) as err:
                pred, why = (math.nan, math.nan), f"not determined: {err}"
            rows.append(_score_cell(label, cell, runs_l[runs_l["cell"] == cell["cell"]],
                                    pred, why))
    return LawScores(table=pd.DataFrame(rows), cells=cells.drop(columns=["bowl"]),
                     laws=described, loss_column=loss_col, cell_keys=keys, notes=tuple(notes))


def _labelled(laws: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, Any]:
    if laws is None:
        laws = DEFAULT_LAWS
    if isinstance(laws, str):
        laws = [laws]
    if isinstance(laws, Mapping):
        items = list(laws.items())
    else:
        items = [(_label(v), v) for v in laws]
    if not items:
        raise ConfigError("laws: no law to score")
    out = {str(k): parse_spec(v) for k, v in items}
    if len(out) != len(items):
        raise ConfigError("laws: two laws share a label; give a mapping label -> law")
    return out


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Refit):
        return "refit"
    law = getattr(value, "law", None)
    return str(law) if isinstance(law, str) else type(value).__name__


def _needed_columns(specs: dict[str, Any], n: str, fpt: str | None) -> list[str]:
    cols = [n, *(s.n for s in specs.values() if s.n)]
    return list(dict.fromkeys([*cols, *([fpt] if fpt else [])]))


def _load(table: TableLike, *, n: str, d: str, lr: str, batch: str, loss: str | None,
          batch_unit: str, seq_len: int, cell_keys: Sequence[str] | None, extra: list[str],
          window: float) -> tuple[pd.DataFrame, pd.DataFrame, str, list[str]]:
    if batch_unit not in BATCH_UNITS:
        raise ConfigError(f"batch_unit: must be 'sequences' or 'tokens', got {batch_unit!r}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int | np.integer) or seq_len <= 0:
        raise ConfigError(f"seq_len: must be a positive integer, got {seq_len!r}")
    df = read_table(table)
    loss, note = resolve_loss_column(df, loss)
    notes = [note] if note else []
    if note:
        warnings.warn(note, UserWarning, stacklevel=3)
    roles = {"D": d, "lr": lr, "batch": batch, **{f"x:{c}": c for c in extra}}
    cols = validated_columns(df, roles, min_rows=2, allow_duplicates=True)
    if loss not in df.columns:
        raise ConfigError(f"column {loss!r}: not in table (columns: "
                          f"{', '.join(map(str, df.columns[:12]))})")
    try:
        values = pd.to_numeric(df[loss], errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        raise ConfigError(f"column {loss!r}: not numeric") from None
    keys = list(cell_keys) if cell_keys is not None else [n, d]
    runs = pd.DataFrame({"cell": cell_codes(df, keys), "D": cols["D"], "lr": cols["lr"],
                         "batch_tokens": cols["batch"] * (seq_len if batch_unit ==
                                                          "sequences" else 1),
                         "loss": np.where(np.isfinite(values), values, np.nan),
                         **{k: v for k, v in cols.items() if k.startswith("x:")}})
    for role in ["D", *(str(k) for k in runs.columns if str(k).startswith("x:"))]:
        if (runs.groupby("cell")[role].nunique() > 1).any():
            name = d if role == "D" else role[2:]
            raise ConfigError(f"cell_keys: a cell of ({', '.join(keys)}) mixes several "
                              f"values of column {name!r}; add a column that tells them "
                              "apart to cell_keys")
    labels = df.groupby(keys, sort=True, dropna=False).ngroup()
    label_of = {int(c): ", ".join(f"{k}={_fmt(df[k].to_numpy()[i])}" for k in keys)
                for i, c in enumerate(labels.to_numpy())}
    cells, merged = _cells(runs, label_of, window, notes)
    if merged:
        msg = (f"{merged} cell(s) hold several runs at the same (lr, batch): seeds, or two "
               f"models merged into one cell? Give cell_keys (e.g. a model id and {d})")
        warnings.warn(msg, UserWarning, stacklevel=3)
        notes.append(msg)
    return runs, cells, loss, notes


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float | np.floating | int | np.integer) \
        else str(value)


def _cells(runs: pd.DataFrame, label_of: dict[int, str], window: float,
           notes: list[str]) -> tuple[pd.DataFrame, int]:
    rows, merged = [], 0
    for _, g in runs.groupby("cell"):
        c = int(g["cell"].iloc[0])
        ok = g[g["loss"].notna()]
        merged += int(g.duplicated(["lr", "batch_tokens"]).any())
        bowl: Bowl | None = None
        try:
            bowl = fit_bowl(g["lr"], g["batch_tokens"], g["loss"], window=window)
        except ValueError as err:
            notes.append(f"{label_of[c]}: no bowl ({err}); bowl columns NaN there")
        best = ok.iloc[int(np.argmin(ok["loss"].to_numpy()))] if len(ok) else None
        rows.append({
            "cell": c, "cell_label": label_of[c], "D": float(g["D"].iloc[0]),
            **{str(k): float(g[k].iloc[0]) for k in g.columns if str(k).startswith("x:")},
            "n_runs": len(g), "n_finite": len(ok),
            "grid_best": float(best["loss"]) if best is not None else math.nan,
            "best_lr": float(best["lr"]) if best is not None else math.nan,
            "best_batch": float(best["batch_tokens"]) if best is not None else math.nan,
            "lr_min": float(g["lr"].min()), "lr_max": float(g["lr"].max()),
            "batch_min": float(g["batch_tokens"].min()),
            "batch_max": float(g["batch_tokens"].max()),
            "bowl_min": bowl.loss_opt if bowl else math.nan,
            "bowl_lr": bowl.lr_opt if bowl else math.nan,
            "bowl_batch": bowl.batch_opt if bowl else math.nan,
            "bowl_at_edge": bool(bowl.at_edge) if bowl else False, "bowl": bowl})
    return pd.DataFrame(rows), merged


def _outside(value: float, lo: float, hi: float) -> float:
    """Octaves beyond [lo, hi] (negative below), 0 inside, NaN for NaN."""
    if not math.isfinite(value):
        return math.nan
    if value > hi * (1 + 1e-9):
        return math.log2(value / hi)
    if value < lo * (1 - 1e-9):
        return math.log2(value / lo)
    return 0.0


def _score_cell(label: str, cell: pd.Series, g: pd.DataFrame, pred: tuple[float, float],
                why: str) -> dict[str, Any]:
    lr_hat, bs_hat = pred
    out_lr = _outside(lr_hat, cell["lr_min"], cell["lr_max"])
    out_bs = _outside(bs_hat, cell["batch_min"], cell["batch_max"])
    row: dict[str, Any] = {
        "law": label, "cell": cell["cell"], "cell_label": cell["cell_label"],
        "N": float(cell["N_law"]), "D": float(cell["D"]), "lr": lr_hat, "batch_tokens": bs_hat,
        "inside": bool(out_lr == 0 and out_bs == 0), "lr_outside_log2": out_lr,
        "batch_outside_log2": out_bs, "grid_best": cell["grid_best"],
        "bowl_min": cell["bowl_min"], "note": why}
    ok = g[g["loss"].notna()]
    near_loss = dist = near_lr = near_bs = math.nan
    if math.isfinite(lr_hat) and math.isfinite(bs_hat) and len(ok):
        r = np.hypot(np.log2(ok["lr"].to_numpy() / lr_hat),
                     np.log2(ok["batch_tokens"].to_numpy() / bs_hat))
        tie = r <= r.min() + 1e-9
        dist, near_loss = float(r.min()), float(ok["loss"].to_numpy()[tie].mean())
        near_lr, near_bs = (float(ok[c].to_numpy()[tie][0]) for c in ("lr", "batch_tokens"))
    bowl = cell["bowl"]
    bowl_loss = float(bowl.loss(lr_hat, bs_hat)) if bowl is not None and \
        math.isfinite(lr_hat) and math.isfinite(bs_hat) else math.nan
    row.update({"nearest_lr": near_lr, "nearest_batch": near_bs, "nearest_loss": near_loss,
                "nearest_distance_log2": dist, "bowl_loss": bowl_loss})
    for ev, value in (("nearest", near_loss), ("bowl", bowl_loss)):
        for ref in ("best", "bowl"):
            base = cell["grid_best"] if ref == "best" else cell["bowl_min"]
            row[f"excess_{ev}_vs_{ref}"] = (value - base) / base
    if not row["inside"] and not why and math.isfinite(out_lr):
        row["note"] = (f"extrapolated: lr {out_lr:+.2f}, batch {out_bs:+.2f} octaves "
                       f"({out_lr / math.log2(10):+.2f}, {out_bs / math.log2(10):+.2f} "
                       "decades) beyond the cell's grid; the bowl value is the quadratic "
                       "extrapolated")
    return row
