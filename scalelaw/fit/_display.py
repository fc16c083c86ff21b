"""How a :class:`~scalelaw.fit.result.FitResult` shows itself: a short repr, a parameter
table (DataFrame and HTML for Jupyter) and predictions by kind.

Kept apart from the result type so that it stays a plain, serialisable record.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from scalelaw.fit import _evaluate

if TYPE_CHECKING:
    import pandas as pd

FitResult = Any  # scalelaw.fit.result.FitResult, which imports this module

LEVEL = 0.95


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.4g}"
    return f"{v:.4f}".rstrip("0").rstrip(".") if abs(v) < 1e3 else f"{v:,.1f}"


def _end(v: float) -> str:
    """An interval end: ``unbounded`` where it runs into a bound (±inf)."""
    return "unbounded" if math.isinf(v) else _fmt(v)


def n_draws(result: FitResult) -> int:
    """The number of bootstrap draws stored (0: none)."""
    if not result.samples:
        return 0
    return max((len(v) for v in result.samples.values()), default=0)


def short_repr(result: FitResult) -> str:
    """One line: law, kind, rows, parameters and the number of bootstrap draws."""
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in result.params.items())
    draws = n_draws(result)
    tail = f", bootstrap={draws} draws" if draws else ""
    return (f"FitResult(law={result.law!r}, kind={result.kind!r}, n_points={result.n_points}, "
            f"params={{{params}}}{tail})")


def to_frame(result: FitResult, level: float = LEVEL) -> pd.DataFrame:
    """One row per parameter (then per derived quantity with draws): value, bootstrap
    standard error and percentile interval at ``level`` (NaN without draws)."""
    import pandas as pd

    names = list(result.params)
    derived = result.metadata.get("derived") or {}
    extra = [k for k in (result.samples or {}) if k not in result.params]
    rows = []
    for name in names + extra:
        value = result.params.get(name, derived.get(name, math.nan))
        se = lo = hi = math.nan
        try:
            se = result.stderr(name)
            lo, hi = result.interval(name, level)
        except (KeyError, ValueError):
            pass
        rows.append({"parameter": name, "value": float(value), "stderr": se,
                     f"lo{level:.0%}": lo, f"hi{level:.0%}": hi,
                     "derived": name not in result.params})
    return pd.DataFrame(rows).set_index("parameter")


def html_table(result: FitResult, level: float = LEVEL) -> str:
    """The parameter table with a caption (law, kind, rows, objective, held-out check)."""
    frame = to_frame(result, level)
    head = ["parameter", "value"]
    draws = n_draws(result)
    if draws:
        head += ["stderr", f"{level:.0%} interval"]
    cells = []
    for name, row in frame.iterrows():
        out = [html.escape(str(name)), _fmt(row["value"])]
        if draws:
            lo, hi = row[f"lo{level:.0%}"], row[f"hi{level:.0%}"]
            out += [_fmt(row["stderr"]),
                    "" if math.isnan(lo) else f"[{_end(lo)}, {_end(hi)}]"]
        cells.append("<tr>" + "".join(f"<td>{c}</td>" for c in out) + "</tr>")
    caption = (f"{html.escape(result.law)} ({result.kind}) fitted on {result.n_points} rows"
               + (f", {draws} bootstrap draws" if draws else ""))
    if result.objective is not None:
        caption += f"; objective {_fmt(result.objective)}"
    notes = []
    holdout = result.metadata.get("holdout")
    if isinstance(holdout, dict) and holdout.get("verdict"):
        notes.append(str(holdout["verdict"]))
    elif isinstance(holdout, dict) and "mean_rel_error" in holdout:
        notes.append(f"held out: mean relative error {holdout['mean_rel_error']:.2%}")
    foot = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return (f"<table><caption>{caption}</caption><thead><tr>"
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(cells) + "</tbody></table>" + foot)


def predict(result: FitResult, inputs: dict[str, Any]) -> Any:
    """Evaluate ``result`` at ``inputs`` according to its kind (see ``FitResult.predict``)."""
    from scalelaw.errors import ConfigError

    if result.kind == "loss":
        from scalelaw.fit.laws import get_law

        try:
            law = get_law(result.law)
        except ConfigError:
            raise ConfigError(f"law {result.law!r}: not in the registry; evaluate a user law "
                              "with law.predict(fit.params, ...)") from None
        return law.predict(result.params, **inputs)
    if result.kind == "hparams":
        _require(inputs, ("N", "D"), result)
        lr, batch = _evaluate.power_law_predict(result.params, inputs["N"], inputs["D"])
        return {"lr": lr, "batch_tokens": batch}
    if result.kind == "schedule":
        _require(inputs, ("batch", "tokens"), result)
        return _evaluate.schedule_lr(result.params, inputs["batch"], inputs["tokens"])
    _require(inputs, ("width",), result)
    return _evaluate.transfer_lr(result.params, result.metadata, inputs["width"])[0]


def _require(inputs: dict[str, Any], names: tuple[str, ...], result: FitResult) -> None:
    from scalelaw.errors import ConfigError

    for name in names:
        if name not in inputs:
            raise ConfigError(f"{name}: a kind={result.kind!r} fit predicts from "
                              f"{', '.join(names)}; got {', '.join(inputs) or 'nothing'}")
    extra = sorted(set(inputs) - set(names))
    if extra:
        raise ConfigError(f"{extra[0]}: not an input of a kind={result.kind!r} fit "
                          f"(inputs: {', '.join(names)})")
