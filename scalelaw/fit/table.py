"""Reading and validating the tables that fitters consume.

Every fitter takes a :class:`pandas.DataFrame` (a CSV / Parquet / JSONL path, a dict of
columns or a list of row dicts: :func:`read_table`) and names the
columns it needs. :func:`validated_columns` turns bad input into one-line
:class:`~scalelaw.errors.ConfigError` messages that name the column and the problem,
which the CLI prints with exit status 2.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [1e9, 2e9, 4e9], "loss": [3.1, 2.9, 2.7]})
>>> cols = validated_columns(df, {"N": "N", "D": "D", "loss": "loss"}, min_rows=3)
>>> cols["N"].tolist()
[100000000.0, 200000000.0, 400000000.0]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from scalelaw.errors import ConfigError

TableLike = (pd.DataFrame | str | os.PathLike[str] | Mapping[str, Sequence[float] | np.ndarray]
             | Sequence[Mapping[str, float]])


def read_table(table: TableLike) -> pd.DataFrame:
    """Return ``table`` as a DataFrame, reading ``.csv``, ``.parquet`` or ``.jsonl`` paths.

    A mapping of column name to values (lists or arrays of one length) and a list of row
    dicts are taken too; anything else is refused in one line.

    >>> read_table({"N": [1e8, 2e8], "loss": np.array([3.1, 3.0])}).shape
    (2, 2)
    >>> read_table([{"N": 1e8, "loss": 3.1}, {"N": 2e8, "loss": 3.0}])["N"].tolist()
    [100000000.0, 200000000.0]
    >>> read_table(np.ones((3, 2)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    scalelaw.errors.ConfigError: table: expected a DataFrame, a path (...), ... got ndarray ...

    Raises
    ------
    FileNotFoundError
        If the path does not exist.
    ConfigError
        If the suffix is not a supported table format or the file cannot be parsed, the
        columns of a mapping differ in length, or ``table`` is of another type.
    """
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, Mapping):
        lengths = {k: np.size(v) for k, v in table.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError("table: columns differ in length ("
                              + ", ".join(f"{k}: {n}" for k, n in lengths.items()) + ")")
        return pd.DataFrame({k: np.ravel(np.asarray(v)) for k, v in table.items()})
    if isinstance(table, list | tuple) and table and all(isinstance(r, Mapping) for r in table):
        return pd.DataFrame(list(table))
    if not isinstance(table, str | os.PathLike):
        hint = (" (wrap an array as pd.DataFrame(array, columns=[...]))"
                if isinstance(table, np.ndarray) else "")
        raise ConfigError("table: expected a DataFrame, a path (.csv, .parquet, .jsonl), a dict "
                          f"of columns or a list of row dicts, got {type(table).__name__}{hint}")
    path = Path(table)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: cannot read table ({str(exc).splitlines()[0]})") from None
    raise ConfigError(f"{path}: unsupported table format {suffix!r} (use .csv, .parquet, .jsonl)")


def validated_columns(
    df: pd.DataFrame,
    columns: Mapping[str, str],
    *,
    positive: tuple[str, ...] | None = None,
    min_rows: int = 1,
    allow_duplicates: bool = False,
) -> dict[str, np.ndarray]:
    """Extract float64 arrays for ``columns`` after checking them.

    Parameters
    ----------
    df : DataFrame
        The input table.
    columns : mapping of role to column name
        e.g. ``{"N": "n_params_nonembed", "D": "tokens", "loss": "eval_loss"}``.
    positive : tuple of roles, optional
        Roles whose values must be > 0 (default: all of them).
    min_rows : int
        Fewer rows than this (e.g. the number of law parameters) is an error.
    allow_duplicates : bool
        If False, rows identical in all requested columns are an error.

    Returns
    -------
    dict of role to ndarray (float64)

    Raises
    ------
    ConfigError
        Missing or non-numeric column, NaN or inf, non-positive value, duplicated rows or
        too few rows; the message names the column.
    """
    missing = [name for name in columns.values() if name not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:12]))
        raise ConfigError(f"column {missing[0]!r}: not in table (columns: {have})")
    positive = tuple(columns) if positive is None else positive
    out: dict[str, np.ndarray] = {}
    for role, name in columns.items():
        try:
            values = pd.to_numeric(df[name], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise ConfigError(f"column {name!r}: not numeric") from None
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            count = int(bad.sum())
            raise ConfigError(f"column {name!r}: {count} NaN/inf value(s), first at row {row}")
        if role in positive and (values <= 0).any():
            row = int(np.flatnonzero(values <= 0)[0])
            raise ConfigError(f"column {name!r}: must be > 0, got {values[row]:g} at row {row}")
        out[role] = values
    n = len(df)
    if n < min_rows:
        raise ConfigError(f"table: {n} row(s), need at least {min_rows} for this fit")
    if not allow_duplicates:
        dup = pd.DataFrame(out).duplicated()
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            cols = ", ".join(columns.values())
            raise ConfigError(f"table: row {row} duplicates an earlier row in ({cols})")
    return out


def check_bootstrap(bootstrap: object) -> int:
    """``bootstrap``, the number of resamples of a fit: 0 (no intervals) or at least 2."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or \
            bootstrap < 0 or bootstrap == 1:
        raise ConfigError(f"bootstrap: must be 0 or >= 2 resamples (0: no intervals), "
                          f"got {bootstrap!r}")
    return int(bootstrap)


def resolve_loss_column(df: pd.DataFrame, loss: str | None) -> tuple[str, str | None]:
    """The loss column to fit and, when it was defaulted, a note to show loudly.

    ``loss`` given: used as is (``(loss, None)``). ``None``: ``"loss"``, and when the table
    also has a smoothed-loss column (a name containing ``smooth``, e.g. Step Law's
    ``"smooth loss"``) the note says which was used and that the smoothed one exists.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"loss": [3.0], "smooth loss": [2.9]})
    >>> resolve_loss_column(df, None)[1].split(";")[0]
    "loss column 'loss' used (the default)"
    >>> resolve_loss_column(df, "smooth loss")
    ('smooth loss', None)
    """
    if loss is not None:
        return loss, None
    smooth = [str(c) for c in df.columns if "smooth" in str(c).lower()]
    if not smooth:
        return "loss", None
    return "loss", (f"loss column 'loss' used (the default); the table also has the smoothed "
                    f"loss {smooth[0]!r}, which Step Law's protocol fits: pass "
                    f"loss={smooth[0]!r} (--loss {smooth[0]!r}) to use it")
