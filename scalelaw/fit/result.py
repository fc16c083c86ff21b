"""`FitResult`: the saved, versioned outcome of any fit (loss surface or hyperparameter law).

A fit is stored as JSON so that it can be diffed, committed next to a sweep's results and
read back by :func:`scalelaw.recommend` without the data it was fitted on.

Examples
--------
>>> r = FitResult(law="chinchilla", params={"E": 1.8, "A": 480.0, "B": 2100.0,
...               "alpha": 0.35, "beta": 0.37}, conventions={"N": "total params"})
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "fit.json")
>>> r.save(path)
>>> load_fit(path).params["E"]
1.8
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalelaw._io import atomic_write
from scalelaw.fit import _display

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = "scalelaw.fit"
SCHEMA_VERSION = 1
KINDS = ("loss", "hparams", "transfer", "schedule")


@dataclass(repr=False)
class FitResult:
    """Parameters of a fitted law, with conventions, goodness of fit and bootstrap draws.

    Parameters
    ----------
    law : str
        Name of the law (a registry name such as ``"chinchilla"`` or a user label).
    params : dict of str to float
        Fitted values in the law's natural units (e.g. ``A``, not ``log A``).
    kind : {"loss", "hparams", "transfer"}
        Whether the law predicts a loss surface, optimal hyperparameters lr*(N, D) and
        B*(D), or the optimal LR across width (:mod:`scalelaw.fit.transfer`).
    conventions : dict of str to str
        Units the law expects, e.g. ``{"N": "non-embedding params", "D": "tokens",
        "B": "tokens", "loss": "nats"}``.
    objective : float, optional
        Final value of the fitting objective (e.g. Huber sum of log residuals).
    n_points : int
        Number of rows the fit used.
    samples : dict of str to list of float, optional
        Bootstrap draws, one list per parameter or derived quantity, all the same length.
    metadata : dict
        Anything else JSON-serialisable (protocol, dropped rows, seeds, held-out errors).

    Examples
    --------
    >>> r = FitResult("chinchilla", {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.34,
    ...               "beta": 0.28}, samples={"E": [1.6, 1.7, 1.8]})
    >>> r  # doctest: +ELLIPSIS
    FitResult(law='chinchilla', kind='loss', n_points=0, params={A=406.4, ...}, bootstrap=3 draws)
    >>> round(float(r.predict(N=70e9, D=1.4e12)), 4), r.interval("E", 0.5)
    (1.9366, (1.65, 1.75))
    """

    law: str
    params: dict[str, float]
    kind: str = "loss"
    conventions: dict[str, str] = field(default_factory=dict)
    objective: float | None = None
    n_points: int = 0
    samples: dict[str, list[float]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        self.params = {str(k): float(v) for k, v in self.params.items()}
        if self.samples is not None:
            self.samples = {str(k): [math.nan if x is None else float(x) for x in v]
                            for k, v in self.samples.items()}

    # ----------------------------------------------------------------- uncertainty
    def _draws(self, name: str) -> np.ndarray:
        if not self.samples or name not in self.samples:
            raise KeyError(f"{name}: no bootstrap samples stored (fit with bootstrap > 0)")
        draws = np.asarray(self.samples[name], dtype=float)
        return draws[np.isfinite(draws)]

    def stderr(self, name: str) -> float:
        """Bootstrap standard error of parameter or derived quantity ``name``."""
        return float(np.std(self._draws(name), ddof=1))

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """Bootstrap percentile interval of ``name`` at confidence ``level``.

        An end that runs into a bound of the fit (more than (1 − level)/2 of the draws at
        or beyond it, :mod:`scalelaw.fit.identify`) is not determined by the data and is
        returned as ``-inf`` or ``inf`` ("unbounded"; ``null`` in JSON).

        >>> r = FitResult("chinchilla", {"alpha": 0.3}, samples={"alpha": [0.2, 0.3, 0.3]},
        ...               metadata={"bootstrap": {"draws": 3, "bound_hits": {"alpha": {
        ...                   "lower": 0, "upper": 2, "at": [0.0, 0.3], "rejected": [0, 0]}}}})
        >>> [round(v, 3) for v in r.interval("alpha")]  # 2 of 3 draws at the upper bound
        [0.205, inf]
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level: must lie in (0, 1), got {level}")
        draws = self._draws(name)
        boot = self.metadata.get("bootstrap")  # a dict from fit_law; others store a count
        hits = (boot.get("bound_hits") or {}).get(name) if isinstance(boot, dict) else None
        if hits:
            (r_lo, r_hi), (b_lo, b_hi) = hits["rejected"], hits["at"]
            draws = np.concatenate([draws, np.full(r_lo, b_lo), np.full(r_hi, b_hi)])
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
        if hits:
            tail = (1 - level) / 2 * len(draws)
            lo = -math.inf if hits["lower"] > tail else lo
            hi = math.inf if hits["upper"] > tail else hi
        return float(lo), float(hi)

    # ----------------------------------------------------------------- views
    def __repr__(self) -> str:
        return _display.short_repr(self)

    def _repr_html_(self) -> str:
        return _display.html_table(self)

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """The parameters (and derived quantities with draws) as a table: value,
        bootstrap standard error and percentile interval at ``level``.

        >>> r = FitResult("power_schedule", {"a": 4.6, "b": -0.51}, kind="schedule",
        ...               samples={"a": [4.4, 4.6, 4.8], "b": [-0.5, -0.51, -0.52]})
        >>> r.to_frame().round(3)[["value", "stderr"]].to_dict()
        {'value': {'a': 4.6, 'b': -0.51}, 'stderr': {'a': 0.2, 'b': 0.01}}
        """
        return _display.to_frame(self, level)

    def predict(self, **inputs: Any) -> Any:
        """Evaluate the fitted law, by kind: ``loss`` (a registry law) at its inputs
        (``N=..., D=...``) gives the loss; ``hparams`` at ``N, D`` gives
        ``{"lr", "batch_tokens"}``; ``schedule`` at ``batch`` (sequences) and ``tokens``
        gives the optimal LR; ``transfer`` at ``width`` gives lr*(width).

        >>> r = FitResult("power_schedule", {"a": 4.6, "b": -0.51}, kind="schedule")
        >>> round(float(r.predict(batch=16, tokens=1e9)), 6)
        0.001892
        """
        return _display.predict(self, inputs)

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, tagged with the schema name and version."""
        out = asdict(self)
        out["params"] = {k: _finite_or_str(v) for k, v in self.params.items()}
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        """Inverse of :meth:`to_dict`; rejects other schemas and newer versions."""
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema: not a scalelaw fit (got {data.get('schema')!r})")
        version = data.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(
                f"version: this scalelaw reads fit files up to version {SCHEMA_VERSION}, "
                f"got {version!r}"
            )
        fields = {k: v for k, v in data.items() if k not in ("schema", "version")}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field in a scalelaw fit file")
        if "law" not in fields or "params" not in fields:
            raise ValueError("params: a scalelaw fit file needs 'law' and 'params'")
        fields["params"] = {k: float(v) for k, v in fields["params"].items()}
        return cls(**fields)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fit as JSON, atomically (a temp file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(json_safe(self.to_dict()), indent=1, default=_json_default,
                          allow_nan=False)
        atomic_write(path, text + "\n")


def load_fit(path: str | os.PathLike[str]) -> FitResult:
    """Read a fit saved by :meth:`FitResult.save`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a scalelaw fit or comes from a newer scalelaw.
    """
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a scalelaw fit")
    return FitResult.from_dict(data)


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (nested dicts and lists), for strict JSON.

    >>> json_safe({"a": [1.0, float("nan")], "b": float("inf")})
    {'a': [1.0, None], 'b': None}
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def _finite_or_str(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
