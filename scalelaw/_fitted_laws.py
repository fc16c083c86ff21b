"""The laws a recommendation can come from, other than the published registry.

Private to :func:`scalelaw.recommend`: a user's fitted law of each kind (``hparams``,
``transfer``, ``schedule``), a saved fit on disk, or a pair of callables, each turned
into ``(lr, batch_tokens, intervals, source label, notes)``.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from scalelaw import published
from scalelaw._extrapolation import extrapolation_notes
from scalelaw.errors import ConfigError
from scalelaw.fit.powerlaw_form import COEFS, power_law_predict, predict_hparams
from scalelaw.fit.result import FitResult, load_fit

__all__ = ["check_positive", "load_laws", "resolve_laws"]


def check_positive(name: str, value: object) -> float:
    """``value`` as a float if it is a positive finite real number (Python or numpy
    scalar: ``np.int64``, ``np.float32`` ...), else a ``ConfigError`` naming ``name``.

    >>> import numpy as np
    >>> check_positive("n_params", np.int64(7_000_000_000))
    7000000000.0
    >>> check_positive("n_params", True)
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: n_params: must be a positive finite number, got True
    """
    if (isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value)) or value <= 0):
        raise ConfigError(f"{name}: must be a positive finite number, got {value!r}")
    return float(value)


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(x for x in xs if math.isfinite(x))
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _from_fit(fit: FitResult, n: float, d: float) -> tuple[float, float, dict, str]:
    lr, bs = (float(v) for v in predict_hparams(fit, n, d))
    intervals: dict[str, tuple[float, float]] = {}
    if fit.samples and all(k in fit.samples for k in COEFS):
        draws = [tuple(float(v) for v in power_law_predict(dict(zip(COEFS, row, strict=True)),
                                                           n, d))
                 for row in zip(*(fit.samples[k] for k in COEFS), strict=True)]
        for i, name in enumerate(("lr", "batch_tokens")):
            vals = [dr[i] for dr in draws]
            intervals[name] = (_quantile(vals, 0.025), _quantile(vals, 0.975))
    src = fit.metadata.get("source", "")
    label = f"user fit {fit.law!r} (n_points {fit.n_points})" + (f"; method {src}" if src else "")
    return lr, bs, intervals, label


def _from_transfer(fit: FitResult, width: Any, batch_law: published.PublishedLaw, n: float,
                   d: float, seq_len: int) -> tuple[float, float, dict, str, list[str]]:
    from scalelaw.fit.transfer import predict_lr  # scipy; only for this kind of fit

    if width is None:
        raise ValueError("width: required with a learning-rate transfer fit (the target width)")
    target = check_positive("width", width)
    lr_arr, (lo_arr, hi_arr) = predict_lr(fit, target)
    lr, lo, hi = float(lr_arr), float(lo_arr), float(hi_arr)
    intervals = {"lr": (lo, hi)} if math.isfinite(lo) else {}
    fitted = fit.metadata.get("fitted", {})
    s_fit, se = fitted.get("width_exponent", math.nan), fitted.get("se")
    se_text = f" +- {se:.3f}" if se is not None and math.isfinite(se) else ""
    optima = fit.metadata["optima"]
    widths = [w for w, used in zip(optima["width"], optima["used"], strict=True) if used]
    c = math.exp(fit.params["log_lr_ref"])
    if fit.metadata.get("drift") == "none":
        model = (f"lr* = {c:.4g} at every width (muP transfer: no drift; fitted exponent "
                 f"{s_fit:+.3f}{se_text})")
    else:
        model = (f"lr*(width) = {c:.4g} x (width/{fit.params['reference_width']:g})^"
                 f"{fit.params['width_exponent']:.3f}{se_text}")
    label = (f"user sweep: {model}, from widths {', '.join(f'{w:g}' for w in widths)}"
             + (f" ({fit.metadata['parametrization']})" if fit.metadata.get("parametrization")
                else ""))
    notes = [f"batch from the published {batch_law.name} law (a width x LR sweep has no "
             "batch axis; choose another with --source / source=)"]
    if not intervals:
        notes.append("no LR interval: the fit has no residual degrees of freedom (2 widths "
                     "with a fitted drift; add a width or assume no drift)")
    if fitted.get("differs_from_zero") and fit.metadata.get("drift") == "none":
        notes.append(f"the fitted exponent {s_fit:+.3f} +- {se:.3f} differs from 0 at the 5% "
                     "level: the optimum drifts with width, so the no-drift prediction is "
                     "suspect (check the parametrization, or use drift 'fit')")
    if widths and target > 4 * max(widths):
        notes.append(f"lr carried from widths <= {max(widths):g} to {target:g}: check the "
                     "fitted exponent (muP: 0) and the interval")
    tuned = fit.metadata.get("tuned_at")
    if tuned:
        notes.append(f"the LR was tuned at batch {tuned['batch_tokens']:,} tokens, "
                     f"{tuned['tokens']:,} tokens, {tuned['schedule']} schedule, weight decay "
                     f"{tuned['weight_decay']:g}; its interval covers the scatter across "
                     "widths only, not the move to the batch, budget and schedule "
                     "recommended here")
    holdout = fit.metadata.get("holdout") or {}
    if holdout.get("checked"):
        notes.append(holdout["verdict"])
    return lr, batch_law.predict(n, d, seq_len)[1], intervals, label, notes


def load_laws(laws: Any) -> Any:
    if not isinstance(laws, str | os.PathLike):
        return laws
    try:
        return load_fit(laws)
    except FileNotFoundError:
        raise ValueError(f"laws: {laws}: no such file") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"laws: {err}") from None


def _from_power_fit(fit: FitResult, batch_law: published.PublishedLaw, n: float, d: float,
                    seq_len: int) -> tuple[float, float, dict, str, list[str]]:
    """lr* = a * beta^c * D^b from a fitted Power schedule (the batch from ``batch_law``;
    c = 1 unless the fit freed it)."""
    batch_tokens = batch_law.predict(n, d, seq_len)[1]
    beta = max(1.0, round(batch_tokens / seq_len))
    a, b = fit.params["a"], fit.params["b"]
    c = fit.params.get("batch_exponent", 1.0)
    lr = a * beta**c * d**b
    intervals = {}
    if fit.samples:
        cs = fit.samples.get("batch_exponent", [c] * len(fit.samples["a"]))
        draws = sorted(sa * beta**sc * d**sb for sa, sb, sc in zip(
            fit.samples["a"], fit.samples["b"], cs, strict=True))
        intervals["lr"] = (_quantile(draws, 0.025), _quantile(draws, 0.975))
    power = "beta" if c == 1.0 else f"beta^{c:.3f}"
    label = (f"fitted Power schedule: lr* = {a:.4g} x {power} x D^{b:.4f} (beta = batch in "
             f"sequences; Shen et al. 2024 Eq. 5-6 form, fitted on your runs)")
    notes = [f"batch from the published {batch_law.name} law (the Power scheduler has no "
             "batch-size law), rounded to whole sequences",
             f"Shen et al. 2024 fitted a = 4.6, b = -0.51 (c = 1); this fit a = {a:.4g}, "
             f"b = {b:.4f}, c = {c:.3f}"]
    return lr, beta * seq_len, intervals, label, notes


def resolve_laws(laws: Any, n: float, d: float, seq_len: int, width: Any,
                  law: published.PublishedLaw) -> tuple[float, float, dict, str, list[str]]:
    if isinstance(laws, FitResult) and laws.kind == "transfer":
        return _from_transfer(laws, width, law, n, d, seq_len)
    if isinstance(laws, FitResult) and laws.kind == "schedule":
        return _from_power_fit(laws, law, n, d, seq_len)
    if isinstance(laws, FitResult):
        holdout = laws.metadata.get("holdout") or {}
        return (*_from_fit(laws, n, d), [holdout["verdict"]] if holdout.get("checked") else [])
    if isinstance(laws, tuple | list) and len(laws) == 2 and all(map(callable, laws)):
        lr_fn, bs_fn = laws
        return float(lr_fn(n, d)), float(bs_fn(n, d)), {}, "user laws (lr, batch_tokens)", []
    raise ValueError(
        "laws: expected a FitResult, a path to a saved fit, or a pair of callables "
        f"(lr(N, D), batch_tokens(N, D)); got {type(laws).__name__}"
    )


def fitted_domain(fit: FitResult) -> dict[str, tuple[float, float]] | None:
    """The (N, D) range a fitted law saw: ``metadata["domain"]`` (fits since 0.2), else
    its cells' N and D (or a Power fit's token budgets); None when unknown."""
    domain = fit.metadata.get("domain")
    if isinstance(domain, dict) and domain:
        return {k: (float(v[0]), float(v[1])) for k, v in domain.items()}
    cells = fit.metadata.get("cells")
    if not isinstance(cells, dict):
        return None
    named = {"N": "N", "D": "D"} if fit.kind == "hparams" else {"D": "tokens"}
    if not all(col in cells and cells[col] for col in named.values()):
        return None
    return {k: (float(min(cells[c])), float(max(cells[c]))) for k, c in named.items()}


def range_notes(laws: Any, law: published.PublishedLaw, n: float, d: float) -> list[str]:
    """Extrapolation notes for a query at (N, D): against the published ``law``'s stated
    range when ``laws`` is None, else against a fitted hparams or schedule law's data."""
    if laws is None:
        return extrapolation_notes(f"the published {law.name} law", law.domain,
                                   {"N": n, "D": d, "C": 6.0 * n * d})
    if isinstance(laws, FitResult) and laws.kind in ("hparams", "schedule"):
        return extrapolation_notes(f"your {laws.law} fit", fitted_domain(laws),
                                   {"N": n, "D": d})
    return []


def split_laws(laws: Any) -> tuple[FitResult | None, Any]:
    """(loss fit or None, the other laws) from ``laws``: one fit, a path, a pair of
    callables, or a list of fits / paths holding at most one loss fit and one other."""
    if isinstance(laws, tuple | list) and not (len(laws) == 2 and all(map(callable, laws))):
        loaded = [load_laws(x) for x in laws]
        loss = [x for x in loaded if isinstance(x, FitResult) and x.kind == "loss"]
        other = [x for x in loaded if not (isinstance(x, FitResult) and x.kind == "loss")]
        if len(loss) > 1 or len(other) > 1:
            raise ValueError("laws: give at most one loss fit and one hyperparameter law, got "
                             f"{len(loss)} loss fit(s) and {len(other)} other law(s)")
        return (loss[0] if loss else None), (other[0] if other else None)
    laws = load_laws(laws)
    if isinstance(laws, FitResult) and laws.kind == "loss":
        return laws, None
    return None, laws


def allocate(loss_fit: FitResult | None, compute: float,
             ) -> tuple[float, float, dict[str, tuple[float, float]], list[str]]:
    """Compute-optimal (N, D) at ``compute`` FLOPs (C = 6ND) from the user's loss fit, with
    95% intervals from its bootstrap draws, or from Epoch AI's published Chinchilla refit;
    returns (N, D, intervals, notes)."""
    from scalelaw.fit.allocate import compute_optimal

    if loss_fit is None:
        fit = published.ALLOCATIONS["epoch"]
        opt = compute_optimal(fit.params, compute)
        n, d = float(opt["N_opt"][0]), float(opt["D_opt"][0])
        return n, d, {}, [f"N and D: the compute-optimal allocation of C = {compute:.3g} FLOPs "
                          f"(C = 6ND) by the published epoch law, {fit.source}; give your "
                          "loss fit in laws= to use yours",
                          "N here counts all parameters (Chinchilla's convention) and is passed "
                          "as it is to the LR and batch laws, which may expect non-embedding N "
                          "(each law's convention: scalelaw.published)"]
    try:
        opt = compute_optimal(loss_fit, compute)
    except KeyError as err:
        raise ValueError(f"laws: the {loss_fit.law!r} loss fit lacks parameter {err} to "
                         "allocate compute") from None
    n, d = float(opt["N_opt"][0]), float(opt["D_opt"][0])
    intervals: dict[str, tuple[float, float]] = {}
    names = list(loss_fit.params)
    if loss_fit.samples and all(k in loss_fit.samples for k in names):
        rows = np.array([loss_fit.samples[k] for k in names], float).T
        rows = rows[np.isfinite(rows).all(axis=1)]
        draws = [compute_optimal(dict(zip(names, r, strict=True)), compute, law=loss_fit.law)
                 for r in rows]
        for key, col in (("n_params", "N_opt"), ("n_tokens", "D_opt")):
            xs = [float(o[col][0]) for o in draws]
            intervals[key] = (_quantile(xs, 0.025), _quantile(xs, 0.975))
    notes = [f"N and D: the compute-optimal allocation of C = {compute:.3g} FLOPs (C = 6ND) "
             f"by your {loss_fit.law} loss fit"
             + (f", 95% intervals from its {len(rows)} bootstrap draws" if intervals else "")]
    notes.extend(extrapolation_notes(f"your {loss_fit.law} loss fit", fitted_domain(loss_fit),
                                     {"N": n, "D": d}))
    return n, d, intervals, notes
