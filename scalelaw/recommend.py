"""``recommend()``: peak LR, batch size, weight decay and schedule for a planned run.

With no fitted laws the published registry (:mod:`scalelaw.published`) is used — Step
Law (Li et al. 2025, arXiv 2503.04715, Eq. 1) by default — and ``source`` says which. With
``laws=`` (a ``kind="hparams"`` :class:`~scalelaw.fit.result.FitResult`, a path to one saved
with ``FitResult.save``, or a pair of callables ``(lr(N, D), batch_tokens(N, D))``) the
user's law is used, with 95% intervals from its bootstrap samples.

Weight decay: no published width-free optimum is in the registry, so the AdamW timescale
τ = B/(η·λ·D) of Power Lines (Bergsma et al. 2025, arXiv 2505.13738) is held at a stated
default (``wd_timescale``, 0.1) and λ = B/(η·τ·D).

With a muP :class:`~scalelaw.mup.rules.Parametrization` and a target ``width`` the
per-role LRs and weight decays are listed (``LayerRule.lr_mult`` and ``wd_mult`` at
``width / base_width``).

This module imports neither JAX nor model code, so ``scalelaw recommend`` starts quickly.

Examples
--------
>>> rec = recommend(1e9, 1e11)
>>> round(rec.lr, 6), rec.batch_sequences
(0.001632, 541)
>>> rec.source.startswith("Step Law")
True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from scalelaw import published
from scalelaw._extrapolation import check_plausible, extrapolation_notes
from scalelaw._fitted_laws import (
    allocate,
    check_positive,
    fitted_domain,
    range_notes,
    resolve_laws,
    split_laws,
)
from scalelaw.fit.allocate import compute_optimal
from scalelaw.fit.result import FitResult
from scalelaw.recommendation import Recommendation


def _parametrization(parametrization: Any, base_width: int | None, laws: Any,
                     width: Any) -> Any:
    """The Parametrization to report per-role values with: given by name and base width,
    given as an object, or, with a target width, the one a transfer fit's sweep used."""
    swept = laws.metadata.get("parametrization_config") if isinstance(laws, FitResult) else None
    if isinstance(parametrization, str):
        from scalelaw.errors import FieldError
        from scalelaw.mup.rules import Parametrization

        if base_width is None:
            raise ValueError("base_width: required with parametrization given by name")
        if swept and (swept["name"], swept["base_width"]) != (parametrization, base_width):
            raise ValueError(f"parametrization, base_width: the fit in laws comes from a "
                             f"{swept['name']} sweep with base width {swept['base_width']}")
        try:
            # any str: the constructor validates the name at run time (FieldError below)
            return Parametrization(parametrization,  # type: ignore[arg-type]
                                   base_width=base_width)
        except FieldError as err:
            raise ValueError(f"{'parametrization' if err.path == 'name' else 'base_width'}: "
                             f"{err.problem}") from None
    if base_width is not None:
        raise ValueError("base_width: only with parametrization given by name")
    if parametrization is None and swept and width is not None:
        from scalelaw.mup.rules import Parametrization

        return Parametrization(**swept)
    return parametrization


def _per_role(parametrization: Any, width: Any, lr: float, wd: float,
              width_used: bool = False) -> tuple[dict, ...]:
    if parametrization is None:
        if width is not None and not width_used:
            raise ValueError("width: only meaningful together with parametrization")
        return ()
    if not hasattr(parametrization, "layer_rule") or not hasattr(parametrization, "base_width"):
        raise ValueError(
            f"parametrization: expected a scalelaw Parametrization, got "
            f"{type(parametrization).__name__}"
        )
    if width is None:
        raise ValueError("width: required with parametrization (the target width)")
    m = check_positive("width", width) / parametrization.base_width
    desc = {"input": "input / vector-like (embeddings, biases, norm gains)",
            "hidden": "hidden (matrix-like)", "output": "output (readout)", "scalar": "scalar"}
    rows = []
    for role in ("input", "hidden", "output", "scalar"):
        rule = parametrization.layer_rule(role, width_mult=m)
        rows.append({"role": desc[role], "lr": lr * rule.lr_mult,
                     "weight_decay": wd * rule.wd_mult, "lr_mult": rule.lr_mult,
                     "wd_mult": rule.wd_mult, "forward_mult": rule.forward_mult,
                     "eps_mult": rule.eps_mult})
    return tuple(rows)


def recommend(
    n_params: float | None = None,
    n_tokens: float | None = None,
    *,
    compute: float | None = None,
    laws: Any = None,
    seq_len: int = 2048,
    parametrization: Any = None,
    width: int | None = None,
    base_width: int | None = None,
    source: str = "steplaw",
    wd_timescale: float = published.DEFAULT_WD_TIMESCALE,
) -> Recommendation:
    """Recommend peak LR, batch size, weight decay and schedule for a planned run.

    Parameters
    ----------
    n_params : float
        Parameters N in the law's convention (Step Law: non-embedding).
    n_tokens : float
        Training tokens D.
    compute : float, optional
        Instead of ``n_params`` and ``n_tokens``: a training budget C in FLOPs, allocated
        compute-optimally (C = 6ND) by the loss fit in ``laws`` (closed form for
        Chinchilla, numeric otherwise; 95% intervals of N and D from its bootstrap draws)
        or, without one, by Epoch AI's published Chinchilla refit.
    laws : FitResult, path, (callable, callable) or list, optional
        A user-fitted hyperparameter law used instead of the published registry: a
        ``kind="hparams"`` fit (:func:`scalelaw.fit.hparams.fit_hparams`; intervals from its
        bootstrap samples), or a ``kind="transfer"`` fit of a width x LR sweep
        (:func:`scalelaw.fit.transfer.fit_lr_transfer`: the LR at ``width`` with its
        prediction interval; the batch from ``source``'s law). A ``kind="loss"`` fit
        allocates compute (a ``yours`` row; with ``compute=`` it sets N and D). A list
        takes one loss fit and one hyperparameter law together.
    seq_len : int
        Tokens per sequence, to express the batch in sequences.
    parametrization : scalelaw.Parametrization or {"sp", "mup", "completep"}, optional
        With ``width``: also list per-role LRs and weight decays at that width. A name
        needs ``base_width``. With a transfer fit and ``width`` it defaults to the sweep's
        parametrization (and a different one is refused).
    width : int, optional
        Target model width (``width / parametrization.base_width`` is the multiplier;
        required with a transfer fit).
    base_width : int, optional
        The base width of a parametrization given by name.
    source : {"steplaw", "deepseek", "kaplan", "power"}
        Published law to use when ``laws`` is None (see :mod:`scalelaw.published`); with
        ``laws`` only its schedule is used (a fitted law records none), and a note says so.
    wd_timescale : float
        AdamW timescale τ used to set the weight decay λ = B/(η·τ·D).

    Raises
    ------
    ValueError
        Non-positive ``n_params``/``n_tokens``/``seq_len``, unknown ``source``, bad ``laws``
        or ``width``; the message names the argument.

    Examples
    --------
    >>> from scalelaw.mup.rules import Parametrization
    >>> rec = recommend(1e9, 1e11, parametrization=Parametrization("mup", base_width=256),
    ...                 width=1024)
    >>> [round(r["lr_mult"], 3) for r in rec.per_role]
    [1.0, 0.25, 1.0, 1.0]

    A budget instead of a size, allocated by Epoch AI's published law (or your loss fit):

    >>> rec = recommend(compute=1e21)
    >>> f"N {rec.n_params:.3g}, D {rec.n_tokens:.3g}"
    'N 2.78e+09, D 6e+10'
    """
    loss_fit, laws = split_laws(laws)
    budget = compute  # the name `compute` holds the allocation rows below
    size_intervals: dict[str, tuple[float, float]] = {}
    notes: list[str] = []
    if compute is not None:
        if n_params is not None or n_tokens is not None:
            raise ValueError("compute, n_params, n_tokens: give a FLOP budget or the run's "
                             "size, not both")
        c = check_plausible("compute", check_positive("compute", compute))
        n_params, n_tokens, size_intervals, more = allocate(loss_fit, c)
        notes.extend(more)
    elif n_params is None or n_tokens is None:
        raise ValueError("n_params, n_tokens: give both, or compute= (a FLOP budget)")
    n = check_plausible("n_params", check_positive("n_params", n_params))
    d = check_plausible("n_tokens", check_positive("n_tokens", n_tokens))
    if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral) or seq_len <= 0:
        raise ValueError(f"seq_len: must be a positive integer, got {seq_len!r}")
    seq_len = int(seq_len)
    law = published.get_law(source)
    parametrization = _parametrization(parametrization, base_width, laws, width)
    notes.extend(range_notes(laws, published.get_law(source), n, d))
    if laws is None:
        lr, batch_tokens = law.predict(n, d, seq_len)
        intervals: dict[str, tuple[float, float]] = {}
        label = f"{law.source}: {law.formula} ({law.units})"
        notes.extend(law.notes)
        schedule_fn: Callable[[float, float, float], dict] = law.schedule
    else:
        lr, batch_tokens, intervals, label, more = resolve_laws(laws, n, d, seq_len, width,
                                                                 law)
        notes.extend(more)
        if isinstance(laws, FitResult) and laws.kind == "schedule":
            fa, fb = laws.params["a"], laws.params["b"]
            fc = laws.params.get("batch_exponent", 1.0)

            def schedule_fn(lr: float, batch_seq: float, d: float) -> dict:
                # beta * a' * n^b with a' = a * beta^(c - 1) is the fitted a * beta^c * n^b
                return published.power_schedule(lr, batch_seq, d, a=fa * batch_seq ** (fc - 1),
                                                b=fb, source="a, b (and c) fitted on your "
                                                "runs; lr_max as Shen et al.")
        else:
            schedule_fn = law.schedule
            notes.append(f"schedule from the published {law.name} law (a fitted law records "
                         "no schedule; choose another with --source / source=)")
    if not (math.isfinite(lr) and lr > 0 and math.isfinite(batch_tokens) and batch_tokens > 0
            and batch_tokens / seq_len < 2.0**53):
        raise ValueError(f"n_params, n_tokens: outside the law's numeric range here "
                         f"(lr {lr:.3g}, batch {batch_tokens:.3g} tokens)")
    batch_seq = max(1, round(batch_tokens / seq_len))
    wd = published.weight_decay_from_timescale(lr, batch_tokens, d, wd_timescale)
    compute = {"flops": 6.0 * n * d, "tokens_per_param": d / n}
    for name, fit in published.ALLOCATIONS.items():
        opt = compute_optimal(fit.params, compute["flops"])
        n_opt, d_opt = float(opt["N_opt"][0]), float(opt["D_opt"][0])
        compute.update({f"{name}_n_opt": n_opt, f"{name}_d_opt": d_opt,
                        f"{name}_tokens_per_param": d_opt / n_opt})
    notes.append("compute-optimal rows use C = 6*N*D with the given N (Chinchilla counts all "
                 "parameters): " + "; ".join(f.source for f in published.ALLOCATIONS.values()))
    if loss_fit is not None:
        try:
            opt = compute_optimal(loss_fit, compute["flops"])
        except KeyError as err:
            raise ValueError(f"laws: the {loss_fit.law!r} loss fit lacks parameter {err} to "
                             "allocate compute") from None
        n_opt, d_opt = float(opt["N_opt"][0]), float(opt["D_opt"][0])
        compute.update({"yours_n_opt": n_opt, "yours_d_opt": d_opt,
                        "yours_tokens_per_param": d_opt / n_opt})
        if budget is None:  # with compute= the allocation's notes said it already
            notes.extend(f"'yours' optimum: {note}" for note in extrapolation_notes(
                f"your {loss_fit.law} loss fit", fitted_domain(loss_fit),
                {"N": n_opt, "D": d_opt}))
        hp = "your hyperparameter law" if laws is not None else f"the published {law.name} law"
        notes.append(f"'yours' optimum from the given {loss_fit.law} loss fit (its own N "
                     f"convention: {loss_fit.conventions.get('N', 'as fitted')}); the LR and "
                     f"batch come from {hp} (a loss law gives none)")
    transfer = isinstance(laws, FitResult) and laws.kind == "transfer"
    per_role = _per_role(parametrization, width, lr, wd, width_used=transfer)
    if per_role and not transfer:
        notes.append("per-role values apply the parametrization's multipliers to the global "
                     "lr/wd; the published laws were fitted on standard-parametrized models")
    return Recommendation(
        n_params=n, n_tokens=d, seq_len=seq_len, lr=lr, batch_tokens=batch_tokens,
        batch_sequences=int(batch_seq), weight_decay=wd,
        schedule=schedule_fn(lr, batch_seq, d), intervals={**size_intervals, **intervals},
        source=label,
        weight_decay_source=published.WD_SOURCE.format(tau=wd_timescale),
        compute=compute, per_role=per_role, notes=tuple(notes),
    )
