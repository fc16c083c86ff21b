"""Scaling-law fitting: loss surfaces L(N, D) and optimal-hyperparameter laws.

This package reads tables (pandas DataFrames, CSV or Parquet) and never imports model or
training code, so losses logged by any framework can be fitted.
"""

from scalelaw.fit.result import FitResult, load_fit

__all__ = ["FitResult", "load_fit"]
