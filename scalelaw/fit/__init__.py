"""Scaling-law fitting: loss surfaces L(N, D) and optimal-hyperparameter laws.

This package reads tables (pandas DataFrames, CSV or Parquet) and never imports model or
training code, so losses logged by any framework can be fitted.

Where things are: ``fit_law.py`` (:func:`~scalelaw.fit.fit_law.fit_law`, fit a law to a
table), ``laws.py`` (the :class:`~scalelaw.fit.laws.Law` objects and their registry),
``objective.py`` (the objective: Hoffmann et al.'s summed Huber by default, least squares,
absolute, asymmetric or a user function; ``objective_spec.py`` spells them as text),
``coords.py`` (fixed and bounded parameters), ``solver.py`` (the vectorised multi-start
solver), ``bootstrap.py`` (intervals, held-out error), ``allocate.py``
(compute-optimal N, D), ``isoflop.py`` and ``isoflop_budget.py`` (Approach 2, per-budget
optima), ``varpro.py`` (Approach 3 by variable projection), ``farseer.py``, ``hparams.py``
and ``bowl.py`` (optimal LR and batch size laws), ``transfer.py`` (LR transfer across
widths), ``result.py`` (:class:`FitResult`). ``scalelaw.fit.fit_law`` is the module; the function is
``scalelaw.fit_law`` (or ``from scalelaw.fit.fit_law import fit_law``).
"""

from scalelaw.fit.result import FitResult, load_fit
from scalelaw.fit.varpro import fit_chinchilla_varpro

__all__ = ["FitResult", "fit_chinchilla_varpro", "load_fit"]
